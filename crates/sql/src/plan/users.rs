//! `CREATE USER` / `CREATE ROLE`, `ALTER USER` / `ALTER ROLE ... PASSWORD` and `DROP USER` /
//! `DROP ROLE` (see `users.rs` for how users are stored).
//!
//! Only `root` creates and drops users; a user may change its own password, `root` anyone's.
//! Every user can log in (`LOGIN` is accepted, `NOLOGIN` and the other role attributes are
//! not supported yet). The password's verifier is derived here, so the plan never holds the
//! password itself.

use meridian_security::ScramCredentials;
use sqlparser::ast::{
    AlterRoleOperation, CreateRole, Expr, Ident, ObjectName, Password, RoleOption, Value,
};

use super::BindContext;
use super::names::{ident, parts};
use crate::api::SqlError;
use crate::users::ROOT;

/// A planned user statement.
#[derive(Debug)]
pub(crate) enum UserPlan {
    /// `CREATE USER name [PASSWORD ...]`: `verifier` is empty for no password.
    Create { name: String, verifier: String },
    /// `ALTER USER name PASSWORD ...`.
    SetPassword { name: String, verifier: String },
    /// `DROP USER [IF EXISTS] names`.
    Drop { names: Vec<String>, if_exists: bool },
}

fn insufficient_privilege(message: &str) -> SqlError {
    SqlError::new("42501", message)
}

fn require_root(ctx: &BindContext<'_>, what: &str) -> Result<(), SqlError> {
    if ctx.user == ROOT {
        Ok(())
    } else {
        Err(
            insufficient_privilege(&format!("permission denied to {what}"))
                .with_hint("Only root manages users."),
        )
    }
}

/// A user name: one identifier, folded as identifiers are.
fn user_name(name: &ObjectName) -> Result<String, SqlError> {
    match parts(name)?.as_slice() {
        [n] => Ok(ident(n)),
        _ => Err(SqlError::syntax(format!("invalid role name \"{name}\""))),
    }
}

/// The verifier to store for `password`: a SCRAM-SHA-256 verifier given as the password is
/// kept; any other string is a password, from which one is derived; `NULL` and the empty
/// string (which PostgreSQL also refuses as a password) mean none.
fn verifier(password: Option<&Password>) -> Result<String, SqlError> {
    let text = match password {
        None | Some(Password::NullPassword) => return Ok(String::new()),
        Some(Password::Password(Expr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => s,
            Value::Null => return Ok(String::new()),
            _ => return Err(SqlError::syntax("a password must be a string literal")),
        },
        Some(Password::Password(_)) => {
            return Err(SqlError::syntax("a password must be a string literal"));
        }
    };
    if text.is_empty() {
        return Ok(String::new());
    }
    let credentials = if text.starts_with("SCRAM-SHA-256$") {
        ScramCredentials::parse(text)
            .map_err(|e| SqlError::new("22023", format!("invalid SCRAM-SHA-256 verifier: {e}")))?
    } else {
        ScramCredentials::from_password(text).map_err(|e| SqlError::internal(e.to_string()))?
    };
    Ok(credentials.to_verifier())
}

/// `CREATE USER` / `CREATE ROLE`.
pub(super) fn plan_create(c: &CreateRole, ctx: &BindContext<'_>) -> Result<UserPlan, SqlError> {
    require_root(ctx, "create role")?;
    let [name] = c.names.as_slice() else {
        return Err(SqlError::syntax("CREATE USER takes one name"));
    };
    let unsupported = c.if_not_exists
        || c.login == Some(false)
        || c.inherit.is_some()
        || c.bypassrls.is_some()
        || c.superuser.is_some()
        || c.create_db.is_some()
        || c.create_role.is_some()
        || c.replication.is_some()
        || c.connection_limit.is_some()
        || c.valid_until.is_some()
        || !(c.in_role.is_empty()
            && c.in_group.is_empty()
            && c.role.is_empty()
            && c.user.is_empty()
            && c.admin.is_empty())
        || c.authorization_owner.is_some();
    if unsupported {
        return Err(SqlError::unsupported(
            "role attributes other than LOGIN and PASSWORD are not supported yet",
        ));
    }
    Ok(UserPlan::Create {
        name: user_name(name)?,
        verifier: verifier(c.password.as_ref())?,
    })
}

/// `ALTER USER name [WITH] PASSWORD ...` (with `LOGIN`, which every user has).
pub(super) fn plan_alter(
    name: &Ident,
    operation: &AlterRoleOperation,
    ctx: &BindContext<'_>,
) -> Result<UserPlan, SqlError> {
    let name = ident(name);
    if ctx.user != ROOT && ctx.user != name {
        return Err(insufficient_privilege("permission denied to alter role")
            .with_hint("A user may change its own password; root may change anyone's."));
    }
    let AlterRoleOperation::WithOptions { options } = operation else {
        return Err(SqlError::unsupported(
            "ALTER USER supports only PASSWORD for now",
        ));
    };
    let mut password = None;
    for o in options {
        match o {
            RoleOption::Password(p) => password = Some(p),
            RoleOption::Login(true) => {}
            _ => {
                return Err(SqlError::unsupported(
                    "ALTER USER supports only PASSWORD for now",
                ));
            }
        }
    }
    let Some(password) = password else {
        return Err(SqlError::unsupported(
            "ALTER USER supports only PASSWORD for now",
        ));
    };
    Ok(UserPlan::SetPassword {
        name,
        verifier: verifier(Some(password))?,
    })
}

/// `DROP USER` / `DROP ROLE`.
pub(super) fn plan_drop(
    names: &[ObjectName],
    if_exists: bool,
    ctx: &BindContext<'_>,
) -> Result<UserPlan, SqlError> {
    require_root(ctx, "drop role")?;
    let names = names.iter().map(user_name).collect::<Result<Vec<_>, _>>()?;
    if names.iter().any(|n| n == ROOT) {
        return Err(insufficient_privilege(
            "cannot drop the bootstrap user root",
        ));
    }
    Ok(UserPlan::Drop { names, if_exists })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(s: &str) -> Password {
        Password::Password(Expr::value(Value::SingleQuotedString(s.to_owned())))
    }

    #[test]
    fn passwords_become_verifiers_and_verifiers_stay() {
        let v = verifier(Some(&password("secret"))).unwrap();
        let creds = ScramCredentials::parse(&v).unwrap();
        assert!(creds.matches_password("secret"));
        assert!(!creds.matches_password("Secret"));
        assert_eq!(verifier(Some(&password(&v))).unwrap(), v);
        assert_eq!(verifier(Some(&password(""))).unwrap(), "");
        assert_eq!(verifier(Some(&Password::NullPassword)).unwrap(), "");
        assert_eq!(verifier(None).unwrap(), "");
        let bad = verifier(Some(&password("SCRAM-SHA-256$x"))).unwrap_err();
        assert_eq!(bad.code, "22023");
    }
}
