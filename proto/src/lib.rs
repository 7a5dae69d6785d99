//! Generated gRPC types and stubs for the dockstack `ContainerHost` service; nothing else.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("dockstack.v1");
