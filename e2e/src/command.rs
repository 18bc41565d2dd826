//! The world's helper commands (`e2e/world/bin`), run with the world's environment.

use std::path::Path;

use crate::World;

impl World {
    /// Runs `program args...` with the world's environment and returns its stdout. Panics with
    /// the exit status and both outputs when it fails.
    pub async fn run(&self, program: &str, args: &[&str]) -> String {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .envs(self.vars())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let line = format!("{program} {}", args.join(" "));
        let out = cmd
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run `{line}` (is e2e/world/bin on PATH?): {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            panic!(
                "`{line}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        stdout
    }

    /// Pushes a tiny real image to the plain-HTTP registry for each `repo:tag` (a path in the
    /// registry, without its host).
    pub async fn push_image(&self, refs: &[&str]) -> Vec<PushedImage> {
        let out = self.run("push-image", refs).await;
        PushedImage::parse(self.registry(), &out)
    }

    /// Pushes a rebuild of each `repo:tag` to the plain-HTTP registry: the same tag, other bytes
    /// (`note` in its layer), so a new digest, as a CI job re-pushing a mutable tag does.
    pub async fn push_rebuild(&self, note: &str, refs: &[&str]) -> Vec<PushedImage> {
        let mut args = vec!["--rebuild", note];
        args.extend_from_slice(refs);
        let out = self.run("push-image", &args).await;
        PushedImage::parse(self.registry(), &out)
    }

    /// Deletes each `repo:tag` from the plain-HTTP registry (its manifest, by digest), as a
    /// yanked release: gone from the tag list and from pulls.
    pub async fn delete_image(&self, refs: &[&str]) -> Vec<PushedImage> {
        let out = self.run("delete-image", refs).await;
        PushedImage::parse(self.registry(), &out)
    }

    /// Like [`World::push_image`], to the HTTPS registry (basic auth).
    pub async fn push_image_tls(&self, refs: &[&str]) -> Vec<PushedImage> {
        let mut args = vec!["--tls"];
        args.extend_from_slice(refs);
        let out = self.run("push-image", &args).await;
        PushedImage::parse(self.registry_tls(), &out)
    }

    /// Packages the chart at `dir` as `version` and pushes it to the world's registry as an OCI
    /// artifact under the path `repo` (`tls`: the HTTPS registry with basic auth, else the plain
    /// one): `oci://host/<repo>/<name>`.
    pub async fn push_chart(
        &self,
        dir: &Path,
        version: &str,
        repo: &str,
        tls: bool,
    ) -> PushedChart {
        let dir = dir.display().to_string();
        let mut args = Vec::new();
        if tls {
            args.push("--tls");
        }
        args.extend([dir.as_str(), version, repo]);
        let out = self.run("push-chart", &args).await;
        PushedChart::parse(&out)
    }

    /// Packages the chart at `dir` as `version` and publishes it to the HTTP chart repository
    /// `repo` on the git server (HTTPS, the git login), reindexed: `https://host/charts/<repo>`.
    /// [`PushedChart::chart`] is that address with `/<name>` added.
    pub async fn push_chart_http(&self, dir: &Path, version: &str, repo: &str) -> PushedChart {
        let dir = dir.display().to_string();
        let out = self
            .run("push-chart", &["--http", dir.as_str(), version, repo])
            .await;
        PushedChart::parse(&out)
    }

    /// Creates the bare repository `name.git` (branch main) on the git servers, seeded with the
    /// content of `dir` when given; returns the seed commit's id then.
    pub async fn git_seed(&self, name: &str, dir: Option<&Path>) -> Option<String> {
        let out = match dir {
            Some(d) => {
                self.run("git-seed", &[name, &d.display().to_string()])
                    .await
            }
            None => self.run("git-seed", &[name]).await,
        };
        out.split_whitespace().last().map(str::to_string)
    }
}

/// One chart `push-chart` pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedChart {
    /// `oci://host:port/charts/name`
    pub chart: String,
    pub version: String,
    /// The manifest's digest, `sha256:...`.
    pub digest: String,
}

impl PushedChart {
    /// Parses push-chart's `CHART VERSION DIGEST` line.
    fn parse(out: &str) -> PushedChart {
        let mut words = out.split_whitespace().map(str::to_owned);
        let mut next = || {
            words
                .next()
                .unwrap_or_else(|| panic!("push-chart printed {out:?}"))
        };
        PushedChart {
            chart: next(),
            version: next(),
            digest: next(),
        }
    }
}

/// One tag `push-image` pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `host:port/repo`
    pub repository: String,
    pub tag: String,
    /// The manifest's digest, `sha256:...`.
    pub digest: String,
}

impl PushedImage {
    /// `host:port/repo:tag`, as a pod spec names it.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }

    /// Parses push-image's `REPO:TAG DIGEST` lines.
    fn parse(registry: &str, out: &str) -> Vec<PushedImage> {
        out.lines()
            .filter_map(|l| {
                let (r, digest) = l.trim().split_once(' ')?;
                let (repo, tag) = r.rsplit_once(':')?;
                Some(PushedImage {
                    repository: format!("{registry}/{repo}"),
                    tag: tag.to_string(),
                    digest: digest.trim().to_string(),
                })
            })
            .collect()
    }
}
