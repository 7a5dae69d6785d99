//! Waiting for ovs-vswitchd to apply a change, as [`Settle`] says.

use serde_json::{Value, json};

use crate::ovsdb::{self, eq, rows, set};

use super::error::{OvsError, Result, unexpected};
use super::handle::Ovs;
use super::policy::Settle;

impl Ovs {
    /// The operations that ask ovs-vswitchd to report when it has applied
    /// this transaction, and whose results give `(next_cfg, cur_cfg)`.
    /// `adds`: the change adds a port, which [`Settle::Ofport`] waits for
    /// without `next_cfg`.
    pub(super) fn bump_cfg_ops(&self, adds: bool) -> Vec<Value> {
        if self.settle == Settle::None || (self.settle == Settle::Ofport && adds) {
            return Vec::new();
        }
        vec![
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["next_cfg", "+=", 1]]}),
            json!({"op": "select", "table": "Open_vSwitch", "where": [],
                   "columns": ["next_cfg", "cur_cfg"]}),
        ]
    }

    pub(super) fn cfgs(select: Option<&Value>) -> Option<(i64, i64)> {
        let row = rows(select?).first()?;
        Some((row["next_cfg"].as_i64()?, row["cur_cfg"].as_i64()?))
    }

    /// Waits until ovs-vswitchd's `cur_cfg` reaches `target`; `cur` is the
    /// last value seen (`i64::MIN`: none). A `wait` for
    /// "cur_cfg == target" could hang when another client bumps `next_cfg`
    /// too and cur_cfg skips our value, so this waits for "cur_cfg changed"
    /// and looks again.
    pub(super) async fn wait_cfg(&self, (target, mut cur): (i64, i64)) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.settle_timeout;
        while cur < target {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
            let ops = vec![
                json!({"op": "wait", "table": "Open_vSwitch", "where": [],
                       "columns": ["cur_cfg"], "until": "!=",
                       "rows": [{"cur_cfg": cur}], "timeout": ms}),
                json!({"op": "select", "table": "Open_vSwitch", "where": [],
                       "columns": ["cur_cfg"]}),
            ];
            let res = match self.client.transact(ops, left).await {
                Ok(r) => r,
                Err(e) if e.is_timed_out_op(0) => {
                    return Err(OvsError::NotApplied(self.settle_timeout));
                }
                Err(e) => return Err(e.into()),
            };
            cur = rows(&res[1])
                .first()
                .and_then(|r| r["cur_cfg"].as_i64())
                .ok_or_else(|| unexpected("cur_cfg", &res[1]))?;
        }
        Ok(())
    }

    /// Waits until ovs-vswitchd has given interface `port` an OpenFlow port
    /// number and returns it; fails with its `error` when it could not add
    /// it.
    pub(super) async fn wait_ofport(&self, port: &str) -> Result<u32> {
        let ops = vec![
            json!({"op": "wait", "table": "Interface", "where": [eq("name", port)],
                   "columns": ["ofport"], "until": "!=",
                   "rows": [{"ofport": set([])}], "timeout": self.timeout_ms()}),
            json!({"op": "select", "table": "Interface", "where": [eq("name", port)],
                   "columns": ["ofport", "error"]}),
        ];
        let res = match self.client.transact(ops, self.settle_timeout).await {
            Ok(r) => r,
            Err(e) if e.is_timed_out_op(0) => {
                return Err(OvsError::NotApplied(self.settle_timeout));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(row) = rows(&res[1]).first() else {
            return Err(OvsError::Interface {
                port: port.into(),
                error: "the interface was removed meanwhile".into(),
            });
        };
        match ovsdb::optional_int(&row["ofport"]).and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 => Ok(n),
            _ => Err(OvsError::Interface {
                port: port.into(),
                error: ovsdb::optional_str(&row["error"])
                    .unwrap_or("no OpenFlow port number")
                    .into(),
            }),
        }
    }

    /// Waits until ovs-vswitchd has applied every delete this process made
    /// on this database without waiting.
    pub async fn settle_pending(&self) -> Result<()> {
        let target = self.pending().deletes.values().copied().max();
        if let Some(target) = target {
            self.wait_cfg((target, i64::MIN)).await?;
            self.pending().deletes.retain(|_, t| *t > target);
        }
        Ok(())
    }

    /// What a process's first add waits for, done ahead: connects, and
    /// waits until ovs-vswitchd has applied the changes that other
    /// processes committed before (see [`Settle`]). A process's first add
    /// calls it; one that knows it is about to add does it ahead, with the
    /// add's first look-ups, through [`Ovs::prepare_to_add`].
    pub async fn prepare(&self) -> Result<()> {
        if !self.settles_others() {
            return Ok(());
        }
        let res = self.transact(vec![Self::select_cfgs()]).await?;
        self.settle_others(res.first()).await
    }

    /// Whether this process has yet to wait for what others left pending.
    pub(super) fn settles_others(&self) -> bool {
        self.settle != Settle::None && !self.pending().others_settled
    }

    pub(super) fn select_cfgs() -> Value {
        json!({"op": "select", "table": "Open_vSwitch", "where": [],
               "columns": ["next_cfg", "cur_cfg"]})
    }

    /// Waits until ovs-vswitchd has applied the `next_cfg` that `select`
    /// (of [`Ovs::select_cfgs`]) saw.
    pub(super) async fn settle_others(&self, select: Option<&Value>) -> Result<()> {
        let cfgs = Self::cfgs(select)
            .ok_or_else(|| unexpected("next_cfg", select.unwrap_or(&Value::Null)))?;
        self.wait_cfg(cfgs).await?;
        self.pending().others_settled = true;
        Ok(())
    }

    /// Before `port` is added again: waits for a pending delete of it, and,
    /// on this process's first add, for whatever other processes committed
    /// before (see [`Ovs::prepare`]).
    pub(super) async fn settle_pending_delete(&self, port: &str) -> Result<()> {
        if self.settle == Settle::None {
            return Ok(());
        }
        self.prepare().await?;
        let target = self.pending().deletes.get(port).copied();
        if let Some(target) = target {
            self.wait_cfg((target, i64::MIN)).await?;
            self.pending()
                .deletes
                .retain(|name, t| name != port || *t > target);
        }
        Ok(())
    }

    /// Waits as [`Settle`] says after a change of `port` (when given).
    /// Returns the added port's OpenFlow number when it waited for one.
    pub(super) async fn settle_after(
        &self,
        added: Option<&str>,
        cfgs: Option<(i64, i64)>,
    ) -> Result<Option<u32>> {
        match (self.settle, added) {
            (Settle::None, _) => Ok(None),
            (Settle::Ofport, Some(port)) => self.wait_ofport(port).await.map(Some),
            (Settle::NextCfg, Some(port)) => {
                self.wait_cfg(cfgs.ok_or_else(|| unexpected("next_cfg", &Value::Null))?)
                    .await?;
                // ovs-vsctl too reports an interface ovs-vswitchd refused.
                self.wait_ofport(port).await.map(Some)
            }
            (_, None) => self
                .wait_cfg(cfgs.ok_or_else(|| unexpected("next_cfg", &Value::Null))?)
                .await
                .map(|()| None),
        }
    }
}
