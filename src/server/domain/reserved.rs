//! Keys that may never be stored: environment variables that change how programs load or run.
//! `run` hands every secret to its child as an environment variable, so a key writer who could
//! store `BASH_ENV` or `LD_PRELOAD` would choose code that the operator's command executes.
//!
//! The list lives here only; `SecretKey::parse` refuses these names on every write path (REST,
//! server functions, import, request forms, tools) and `run` / `export` refuse to hand out one
//! written before the rule existed unless the operator names it (`--allow-key`). Exact names
//! are preferred to patterns: a prefix is used only where the family belongs to one loader or
//! interpreter (`LD_`, `DYLD_`, `PERL5`), so ordinary names such as `SSH_PRIVATE_KEY`,
//! `GIT_TOKEN` or `PYTHON_API_KEY` stay usable.

/// Names refused exactly (case-sensitive, as the environment is).
pub const RESERVED_NAMES: &[&str] = &[
    // Shells: startup files, function import, prompts and tracing that run commands.
    "BASH_ENV",
    "ENV",
    "ZDOTDIR",
    "PATH",
    "IFS",
    "PS4",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "CDPATH",
    "GLOBIGNORE",
    // The C library's loader and locale machinery.
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    // Language runtimes that load code named by the environment.
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "PYTHON_BASIC_REPL",
    "PYTHON_COLORS",
    "PYTHON_CPU_COUNT",
    "PYTHON_FROZEN_MODULES",
    "PYTHON_GIL",
    "PYTHON_HISTORY",
    "PYTHON_PERF_JIT_SUPPORT",
    // Git and SSH: programs they start on the user's behalf.
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "GIT_EXEC_PATH",
    "GIT_CONFIG",
    "GIT_PROXY_COMMAND",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_TEMPLATE_DIR",
    "SSH_ASKPASS",
    "SSH_AUTH_SOCK",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "LESSOPEN",
    "LESSCLOSE",
    // Who and where the process is.
    "HOME",
    "USER",
    "SHELL",
    "TMPDIR",
];

/// Prefixes refused: each names a family owned by one loader, interpreter or this program.
pub const RESERVED_PREFIXES: &[&str] = &[
    "LD_",                // glibc's loader: LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, ...
    "DYLD_",              // macOS's loader
    "BASH_FUNC_",         // functions bash imports from the environment
    "PERL5",              // PERL5LIB, PERL5OPT, PERL5DB, ...
    "GIT_CONFIG_",        // GIT_CONFIG_COUNT, GIT_CONFIG_KEY_<n>, GIT_CONFIG_PARAMETERS, ...
    "LOOPSTACK_SECRETS_", // this program's own configuration
];

/// Whether `key` is reserved. `PYTHON` followed by capital letters only (PYTHONPATH,
/// PYTHONSTARTUP, PYTHONHOME, ...) is Python's; `PYTHON_` plus a name is not, except the
/// exact names listed above.
pub fn is_reserved(key: &str) -> bool {
    RESERVED_NAMES.contains(&key)
        || RESERVED_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
        || key
            .strip_prefix("PYTHON")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase()))
}

/// The list as the README shows it.
pub fn describe() -> String {
    let mut out: Vec<String> = RESERVED_NAMES.iter().map(|n| format!("`{n}`")).collect();
    out.extend(RESERVED_PREFIXES.iter().map(|p| format!("`{p}*`")));
    out.push("`PYTHON<LETTERS>`".into());
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_security_review_listed_is_reserved() {
        for key in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "DYLD_INSERT_LIBRARIES",
            "BASH_ENV",
            "ENV",
            "BASH_FUNC_x",
            "PATH",
            "IFS",
            "PS4",
            "PROMPT_COMMAND",
            "SHELLOPTS",
            "BASHOPTS",
            "GCONV_PATH",
            "NODE_OPTIONS",
            "NODE_PATH",
            "PYTHONSTARTUP",
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTHONINSPECT",
            "PERL5OPT",
            "PERL5LIB",
            "PERLLIB",
            "RUBYOPT",
            "RUBYLIB",
            "JAVA_TOOL_OPTIONS",
            "_JAVA_OPTIONS",
            "GIT_SSH",
            "GIT_SSH_COMMAND",
            "GIT_ASKPASS",
            "GIT_EXEC_PATH",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "GIT_CONFIG_PARAMETERS",
            "GIT_PROXY_COMMAND",
            "GIT_EXTERNAL_DIFF",
            "SSH_ASKPASS",
            "SSH_AUTH_SOCK",
            "HOME",
            "USER",
            "SHELL",
            "TMPDIR",
            "LOOPSTACK_SECRETS_MASTER_KEY",
        ] {
            assert!(is_reserved(key), "{key} must be reserved");
        }
    }

    #[test]
    fn ordinary_secret_names_stay_usable() {
        for key in [
            "SSH_PRIVATE_KEY",
            "GIT_TOKEN",
            "GITHUB_TOKEN",
            "PYTHON_API_KEY",
            "PYTHON",
            "PATH_TO_KEY",
            "HOME_API",
            "OPENAI_API_KEY",
            "DATABASE_URL",
            "USERNAME",
            "ENVIRONMENT",
            "LDAP_PASSWORD",
            "NODE_ENV",
            "path",
            "ld_preload",
        ] {
            assert!(!is_reserved(key), "{key} must stay usable");
        }
    }

    #[test]
    fn the_description_names_every_entry() {
        let text = describe();
        assert!(RESERVED_NAMES.iter().all(|n| text.contains(&format!("`{n}`"))));
        assert!(text.contains("`LD_*`"));
    }
}
