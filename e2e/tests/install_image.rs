//! The daemons' container images, built by `image/build` without a container engine (the
//! binary, exactly the shared libraries `ldd` lists, the CA bundle, user `nonroot` 65532), pushed
//! to the world's registry, pulled back by digest, unpacked and run in a chroot as user 65532 —
//! `version` and `--help` — and installed by digest through the chart's image values (a
//! server-side dry-run on the world). Building twice gives the same digest.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use sluice_e2e::World;
use sluice_e2e::installed::{apply_manifests, kubectl, manifests_dir};

const DAEMONS: [&str; 2] = ["deploy-synchronizer", "config-updater"];

fn run(what: &str, command: &mut Command) -> String {
    let out: Output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn world_command(world: &World, program: &str) -> Command {
    let mut command = Command::new(program);
    command.env("PATH", world.var("PATH").unwrap_or("/usr/bin:/bin"));
    command
}

/// Builds `daemon`'s image into `out` and pushes it as `sluice/<daemon>:e2e`; returns its digest.
fn build_and_push(world: &World, daemon: &str, out: &Path) -> String {
    let script = manifests_dir().join("../image/build");
    let binary = sluice_e2e::daemon::binary(daemon);
    let reference = format!("{}/sluice/{daemon}:e2e", world.registry());
    let printed = run(
        &format!("image/build {daemon}"),
        world_command(world, script.to_str().unwrap())
            .arg(&binary)
            .arg(out)
            .args(["--push", &reference, "--dest-tls-verify=false"]),
    );
    let digest = printed.lines().last().unwrap_or("").trim().to_owned();
    assert!(digest.starts_with("sha256:"), "a digest, not {printed:?}");
    digest
}

/// Pulls `image@digest` into the OCI layout `layout` and unpacks its layers into `root`; returns
/// the image's config.
fn pull_and_unpack(world: &World, image: &str, digest: &str, layout: &Path, root: &Path) -> Value {
    run(
        "skopeo copy",
        world_command(world, "skopeo").args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{image}@{digest}"),
            &format!("oci:{}:pulled", layout.display()),
        ]),
    );
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let json = |path: std::path::PathBuf| -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let index = json(layout.join("index.json"));
    let manifest = json(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    std::fs::create_dir_all(root).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let file = blob(layer["digest"].as_str().unwrap());
        run(
            "tar -x",
            Command::new("tar")
                .arg("-xzf")
                .arg(&file)
                .arg("-C")
                .arg(root),
        );
    }
    json(blob(manifest["config"]["digest"].as_str().unwrap()))
}

#[test]
fn each_daemon_image_runs_as_nonroot_in_a_chroot_and_installs_by_digest() {
    let world = World::get();
    let dir = tempfile::tempdir().unwrap();
    let mut set = Vec::new();
    for daemon in DAEMONS {
        let digest = build_and_push(world, daemon, &dir.path().join(format!("{daemon}-oci")));
        let again = run(
            "image/build again",
            world_command(
                world,
                manifests_dir().join("../image/build").to_str().unwrap(),
            )
            .arg(sluice_e2e::daemon::binary(daemon))
            .arg(dir.path().join(format!("{daemon}-oci-again"))),
        );
        assert_eq!(again.trim(), digest, "a reproducible build");

        let image = format!("{}/sluice/{daemon}", world.registry());
        let root = dir.path().join(format!("{daemon}-root"));
        let layout = dir.path().join(format!("{daemon}-pulled"));
        let config = pull_and_unpack(world, &image, &digest, &layout, &root);
        assert_eq!(config["config"]["User"], "65532:65532");
        let entrypoint = format!("/usr/local/bin/{daemon}");
        assert_eq!(config["config"]["Entrypoint"][0], entrypoint.as_str());
        assert!(root.join("etc/ssl/certs/ca-certificates.crt").is_file());

        // Its entrypoint runs in the unpacked image alone, as the image's user.
        let chroot = |arg: &str| {
            run(
                &format!("chroot {daemon} {arg}"),
                Command::new("chroot")
                    .arg("--userspec=65532:65532")
                    .arg(&root)
                    .args([entrypoint.as_str(), arg]),
            )
        };
        let version = chroot("version");
        assert!(version.starts_with(daemon), "{version}");
        assert!(chroot("--help").contains("Usage:"));

        let key = if daemon == "deploy-synchronizer" {
            "deploySynchronizer"
        } else {
            "configUpdater"
        };
        set.push(format!("{key}.image.repository={image}"));
        set.push(format!("{key}.image.digest={digest}"));
    }

    // The world's install: the chart, pointed at the pushed images by digest.
    let chart = manifests_dir().join("chart");
    let mut args = vec![
        "template".to_owned(),
        "sluice".to_owned(),
        chart.display().to_string(),
        "--namespace".to_owned(),
        "sluice-system".to_owned(),
    ];
    for value in &set {
        args.extend(["--set".to_owned(), value.clone()]);
    }
    let rendered = run("helm template", world_command(world, "helm").args(&args));
    for daemon in DAEMONS {
        let image = format!("image: {}/sluice/{daemon}@sha256:", world.registry());
        assert!(rendered.contains(&image), "{image} in the rendered chart");
    }
    apply_manifests(world);
    let file = dir.path().join("install.yaml");
    std::fs::write(&file, &rendered).unwrap();
    let out = kubectl(
        world,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "--field-manager=image-test",
            "-f",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
