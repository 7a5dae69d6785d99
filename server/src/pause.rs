//! Owns the pause image: the sandbox containers' PID 1, a program of a few
//! KiB that holds a network namespace open and exits at once on SIGTERM.
//! Each host builds the image itself from the binary embedded here, so no
//! registry is needed; its tag is the binary's hash, so a changed program is
//! a new image and an old server keeps the one it knows.

use crate::docker::{DockerClient, DockerError};

/// The image's name; [`TAG`] says which pause program it holds.
pub const IMAGE: &str = "dockstack-pause";

/// The first 12 hex digits of the SHA-256 of [`PAUSE`].
pub const TAG: &str = env!("DOCKSTACK_PAUSE_TAG");

/// The static pause program that build.rs compiles from `pause/pause.c`.
pub const PAUSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

const DOCKERFILE: &str = "FROM scratch\nCOPY pause /pause\nENTRYPOINT [\"/pause\"]\n";

#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("cannot make the build context of pause image {image}: {source}")]
    Context {
        image: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot check or build pause image {image}: {source}")]
    Docker {
        image: String,
        #[source]
        source: DockerError,
    },
}

/// The reference (`name:tag`) of this server's pause image.
pub fn image_ref() -> String {
    format!("{IMAGE}:{TAG}")
}

/// Makes sure this server's pause image is in the local Docker, building it
/// when it is not; returns its reference.
///
/// Servers that share a dockerd may race here: each then builds the same
/// content under the same tag, the last tag wins and the loser's image is
/// left untagged, which is harmless.
pub async fn ensure_image(docker: &DockerClient) -> Result<String, PauseError> {
    ensure_image_named(docker, IMAGE).await
}

// The name is a parameter so that tests can build under names of their own
// without racing the servers, or one another, for the real one.
async fn ensure_image_named(docker: &DockerClient, name: &str) -> Result<String, PauseError> {
    let image = format!("{name}:{TAG}");
    let docker_err = |source| PauseError::Docker {
        image: image.clone(),
        source,
    };
    if docker.image_exists(&image).await.map_err(docker_err)? {
        return Ok(image);
    }
    let context = build_context().map_err(|source| PauseError::Context {
        image: image.clone(),
        source,
    })?;
    tracing::info!(%image, "building the pause image");
    docker
        .build_image(&image, context)
        .await
        .map_err(docker_err)?;
    Ok(image)
}

fn build_context() -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, "Dockerfile", 0o644, DOCKERFILE.as_bytes())?;
    append(&mut tar, "pause", 0o755, PAUSE)?;
    tar.into_inner()
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    // A fixed time keeps the context, and so the build cache, the same.
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, path, data)
}

#[cfg(test)]
mod tests;
