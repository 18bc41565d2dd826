//! Kustomize mode: `kustomize build <dir>`, or `kubectl kustomize <dir>` when only kubectl is
//! installed. The output is one YAML stream and goes through the same [`parse_documents`] as a
//! plain directory, so both modes obey one set of rules.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::{
    Manifest, RenderError, RenderErrors, RenderOptions, RenderTarget, check_duplicates,
    parse_documents,
};

/// At most this much of kustomize's stderr goes into an error; its last lines say what failed.
const STDERR_LIMIT: usize = 4096;

/// The program that builds a Kustomization and the arguments before the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KustomizeTool {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl KustomizeTool {
    /// `kustomize build` when `kustomize` is on `search_path`, else `kubectl kustomize` (kubectl
    /// embeds a kustomize, usually an older one), else `None`.
    pub fn locate(search_path: &OsStr) -> Option<Self> {
        let tool = |name: &str, subcommand: &str| {
            find_executable(name, search_path).map(|program| Self {
                program,
                args: vec![subcommand.into()],
            })
        };
        tool("kustomize", "build").or_else(|| tool("kubectl", "kustomize"))
    }

    /// The command as shown to users: `kustomize build apps/prod`.
    pub fn command_line(&self, target: &RenderTarget) -> String {
        let program = self.program.file_name().unwrap_or(self.program.as_os_str());
        let mut line = program.to_string_lossy().into_owned();
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line.push(' ');
        line.push_str(&target.label);
        line
    }

    /// Runs the build and returns its stdout. The process is killed when it outlives `timeout`
    /// (kill-on-drop: the timed-out future owns the child). Plain `kustomize build` starts no
    /// helpers (Helm needs `--enable-helm`, which is not passed), so killing it leaves nothing
    /// behind.
    pub async fn build(
        &self,
        target: &RenderTarget,
        timeout: Duration,
    ) -> Result<Vec<u8>, RenderError> {
        let command = self.command_line(target);
        let child = Command::new(&self.program)
            .args(&self.args)
            .arg(&target.dir)
            .current_dir(&target.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| RenderError::KustomizeSpawn {
                command: command.clone(),
                error,
            })?;
        let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Err(_elapsed) => return Err(RenderError::KustomizeTimedOut { command, timeout }),
            Ok(Err(error)) => return Err(RenderError::KustomizeSpawn { command, error }),
            Ok(Ok(output)) => output,
        };
        if !output.status.success() {
            let stderr =
                repo_relative(String::from_utf8_lossy(&output.stderr).trim(), &target.root);
            let stderr = tail(&without_values(&stderr), STDERR_LIMIT);
            return Err(RenderError::KustomizeFailed {
                command,
                status: output.status.to_string(),
                stderr,
            });
        }
        Ok(output.stdout)
    }

    /// Builds and parses: the manifests of the Kustomization, labelled with the command that made
    /// them (`<kustomize build apps/prod>`), since they have no single source file.
    pub async fn render(
        &self,
        target: &RenderTarget,
        timeout: Duration,
    ) -> Result<Vec<Manifest>, RenderErrors> {
        let output = self.build(target, timeout).await?;
        let label = format!("<{}>", self.command_line(target));
        let manifests = parse_documents(&label, &output)?;
        // kustomize rejects most duplicates itself; this catches the rest the same way as plain.
        RenderErrors::check(check_duplicates(&manifests))?;
        Ok(manifests)
    }
}

/// Renders the target with whichever kustomize is installed.
pub async fn render_kustomize(
    target: &RenderTarget,
    options: &RenderOptions,
) -> Result<Vec<Manifest>, RenderErrors> {
    super::confine::confine(&target.root, &target.dir)?;
    let search_path = options
        .search_path
        .clone()
        .or_else(|| std::env::var_os("PATH"));
    let tool = KustomizeTool::locate(search_path.as_deref().unwrap_or_default())
        .ok_or(RenderError::KustomizeNotFound)?;
    tool.render(target, options.kustomize_timeout).await
}

/// The first `name` in the `PATH`-style `search_path` that is an executable file.
pub(super) fn find_executable(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// What kustomize's stderr prints after this is the YAML of the node it failed on: any value of
/// any object, a Secret's included (`wrong node kind: expected MappingNode but got ScalarNode:
/// node contents:` and the value).
const NODE_CONTENTS: &str = "node contents:";
/// kustomize prints every literal of a generator when one is not `key=value`, the valid ones with
/// their values: `literal sources [password=s3cret oops]: invalid literal source oops, …`.
const LITERAL_SOURCES: &str = "literal sources";

/// kustomize's stderr as it may be shown (in conditions, events and logs): without the values
/// kustomize quotes from the repository when it fails on them (see [`NODE_CONTENTS`] and
/// [`LITERAL_SOURCES`]), which can be a Secret's. The rest, what failed and in which file, stays.
fn without_values(stderr: &str) -> String {
    let mut shown = String::with_capacity(stderr.len());
    for line in stderr.lines() {
        if !shown.is_empty() {
            shown.push('\n');
        }
        if let Some(at) = line.find(NODE_CONTENTS) {
            shown.push_str(&line[..at + NODE_CONTENTS.len()]);
            shown.push_str(" (not shown: it may hold a Secret's value)");
            return shown;
        }
        match line.find(LITERAL_SOURCES) {
            Some(at) => {
                shown.push_str(&line[..at]);
                shown.push_str(
                    "literal sources (not shown: they hold values): a literal is not key=value",
                );
            }
            None => shown.push_str(line),
        }
    }
    shown
}

/// `text` with the checkout's absolute path taken out, so kustomize's messages name files as
/// the repository does (`apps/web/missing.yaml`), not the synchronizer's scratch directory.
pub(super) fn repo_relative(text: &str, root: &Path) -> String {
    let root = root.to_string_lossy();
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return text.to_owned();
    }
    text.replace(&format!("{root}/"), "").replace(root, ".")
}

/// The last `limit` bytes of `text` (on a character boundary), marked when cut.
pub(super) fn tail(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

#[cfg(test)]
#[path = "kustomize_tests.rs"]
mod tests;
