//! Flushing the flows a datapath cached for a MAC.

use crate::unixctl::{self, UnixctlError};

use super::error::Result;
use super::handle::Ovs;

impl Ovs {
    /// Deletes the flows that the datapath of `bridge` has cached for
    /// frames to `mac`, through ovs-vswitchd's control socket beside the
    /// database's; returns how many went.
    ///
    /// When a port goes, OVS's revalidators turn the flows cached toward its
    /// MAC into drops. A port added again for the same MAC (a restarted
    /// container: netplug's MACs follow the address) meets those drops
    /// until the revalidators have run again after the add, 2–5 ms later on
    /// this project's VMs, and what is sent to the container meanwhile is
    /// lost. Deleted, the next frame to the MAC is looked up afresh and
    /// finds the new port. Run once the new port is in the datapath.
    pub async fn forget_flows_to(&self, bridge: &str, mac: crate::mac::Mac) -> Result<usize> {
        let db = self.client.path()?.to_path_buf();
        let datapath = self.datapath_of(bridge).await?;
        let forget = move || -> std::result::Result<usize, UnixctlError> {
            let mut session = unixctl::Session::connect(&unixctl::vswitchd_socket(&db)?)?;
            let filter = format!("filter=dl_dst={mac}");
            let dump = session.call("dpctl/dump-flows", &["-m", &datapath, &filter])?;
            let mut forgotten = 0;
            for ufid in unixctl::dumped_ufids(&dump) {
                match session.call("dpctl/del-flow", &[&datapath, &format!("ufid:{ufid}")]) {
                    Ok(_) => forgotten += 1,
                    // Gone already: expired, or revalidated away meanwhile.
                    Err(UnixctlError::Command { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(forgotten)
        };
        let forgotten =
            tokio::task::spawn_blocking(forget)
                .await
                .map_err(|e| UnixctlError::Command {
                    command: "dpctl/del-flow".into(),
                    error: format!("the task ended: {e}"),
                })?;
        if forgotten.is_err() {
            // The bridge may have been made anew with another datapath.
            self.datapaths().remove(bridge);
        }
        Ok(forgotten?)
    }
}
