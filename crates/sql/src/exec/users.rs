//! Executing user statements: each is one write of the user keys it read, so two concurrent
//! `CREATE USER`s of one name conflict and the second fails when retried.

use meridian_tablet::{Mutation, WriteRequest};

use super::ExecContext;
use super::ddl::{point, tag, write};
use crate::api::{SqlError, StatementResult};
use crate::error::Result;
use crate::plan::UserPlan;
use crate::users;

fn undefined_role(name: &str) -> SqlError {
    SqlError::new("42704", format!("role \"{name}\" does not exist"))
}

/// Runs a user statement; its tag is PostgreSQL's (`CREATE ROLE` for `CREATE USER` too).
pub(crate) async fn execute(cx: &mut ExecContext<'_>, plan: &UserPlan) -> Result<StatementResult> {
    let mut req = WriteRequest {
        read_ts: Some(cx.read_ts),
        ..Default::default()
    };
    let (kv, ts) = (cx.kv, cx.read_ts);
    let done = match plan {
        UserPlan::Create { name, verifier } => {
            if users::get(kv, name, ts).await?.is_some() {
                return Err(
                    SqlError::new("42710", format!("role \"{name}\" already exists")).into(),
                );
            }
            put(&mut req, name, verifier);
            "CREATE ROLE"
        }
        UserPlan::SetPassword { name, verifier } => {
            if users::get(kv, name, ts).await?.is_none() {
                return Err(undefined_role(name).into());
            }
            put(&mut req, name, verifier);
            "ALTER ROLE"
        }
        UserPlan::Drop { names, if_exists } => {
            for name in names {
                if users::get(kv, name, ts).await?.is_none() {
                    if *if_exists {
                        continue;
                    }
                    return Err(undefined_role(name).into());
                }
                let key = users::user_key(name);
                req.read_spans.push(point(key.clone()));
                req.mutations.push(Mutation::Delete { key });
            }
            "DROP ROLE"
        }
    };
    if !req.mutations.is_empty() {
        write(cx, req).await?;
    }
    Ok(tag(done))
}

/// Sets user `name`'s verifier, with its key among the write's reads.
fn put(req: &mut WriteRequest, name: &str, verifier: &str) {
    let key = users::user_key(name);
    req.read_spans.push(point(key.clone()));
    req.mutations.push(Mutation::Put {
        key,
        value: verifier.as_bytes().to_vec(),
    });
}
