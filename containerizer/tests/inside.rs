//! What a launched executor observes from inside its container, asserted
//! from the executor's own output (a shell script run as the executor, so
//! `/proc/self` is the first program exec'd in the container).

mod common;

use std::path::Path;

use common::{block, can_run, one, tagged, Harness};
use mesos_containerizer::spec::DEFAULT_CAPABILITIES;
use mesos_containerizer::Step;

/// Prints what the executor sees, each line tagged. Shell builtins only where
/// the shell itself must be the observer (`$$`, /proc/self, globbing).
const OBSERVE: &str = r#"
while IFS= read -r l; do echo "cgroup $l"; done < /proc/self/cgroup
echo "pid $$"
for p in /proc/[0-9]*; do echo "proc $p"; done
read h < /proc/sys/kernel/hostname; echo "hostname $h"
while IFS= read -r l; do
  case "$l" in CapEff*|CapBnd*|CapPrm*|CapAmb*|NoNewPrivs*|Uid*|Gid*|Groups*|SigIgn*|SigBlk*) echo "status $l";; esac
done < /proc/self/status
echo fds-begin; ls -1 /proc/$$/fd; echo fds-end
echo env-begin; env; echo env-end
echo "cwd $(pwd)"
echo "sandbox-env $MESOS_SANDBOX"
echo to-stderr >&2
"#;

/// `/sys/fs/cgroup/<hierarchy>` + path for each `/proc/self/cgroup` line.
fn cgroup_dirs_seen(stdout: &str) -> Vec<std::path::PathBuf> {
    tagged(stdout, "cgroup")
        .iter()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            let hierarchy = match controllers {
                "" => "unified",
                list => list.split(',').next()?.trim_start_matches("name="),
            };
            Some(
                Path::new("/sys/fs/cgroup")
                    .join(hierarchy)
                    .join(path.trim_start_matches('/')),
            )
        })
        .collect()
}

fn capability_mask(caps: &[oci_spec::runtime::Capability]) -> u64 {
    caps.iter()
        .map(|cap| {
            format!("CAP_{cap}")
                .parse::<caps::Capability>()
                .expect("known capability")
                .bitmask()
        })
        .fold(0, |mask, bit| mask | bit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_root_executor_is_isolated_from_its_first_instruction() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let id = "inside-nobody";
            let mut request = h.shell(id, OBSERVE);
            request.command.user = Some("nobody".into());
            let (termination, stdout, stderr) = h.run_to_end(request).await;
            assert_eq!(
                termination.exit_code,
                Some(0),
                "{termination:?}\n{stdout}\n{stderr}"
            );

            // Every cgroup of the container, in every hierarchy, already
            // holds the shell when it reads /proc/self/cgroup.
            let seen = cgroup_dirs_seen(&stdout);
            for dir in h.cgroup_dirs(id) {
                assert!(
                    seen.contains(&dir),
                    "{} not in /proc/self/cgroup:\n{stdout}",
                    dir.display()
                );
            }

            assert_eq!(
                one(&stdout, "pid"),
                "1",
                "the executor is pid 1 of its pid namespace"
            );
            assert_eq!(
                tagged(&stdout, "proc"),
                ["/proc/1"],
                "no other process is visible"
            );
            assert_eq!(one(&stdout, "hostname"), id);

            let status = tagged(&stdout, "status");
            let field = |name: &str| {
                status
                    .iter()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .unwrap_or_else(|| panic!("{name} missing in {status:?}"))
            };
            assert_eq!(field("CapEff:"), "0000000000000000");
            assert_eq!(field("CapPrm:"), "0000000000000000");
            assert_eq!(field("CapBnd:"), "0000000000000000");
            assert_eq!(field("NoNewPrivs:"), "1");
            // Neither the agent's ignored SIGPIPE nor the clone's blocked
            // mask reaches the executor.
            assert_eq!(field("SigIgn:"), "0000000000000000");
            assert_eq!(field("SigBlk:"), "0000000000000000");
            assert_eq!(field("Uid:"), "65534\t65534\t65534\t65534");
            assert_eq!(field("Gid:"), "65534\t65534\t65534\t65534");

            assert_eq!(
                block(&stdout, "fds-begin", "fds-end"),
                ["0", "1", "2"],
                "only stdio is open"
            );

            let env = block(&stdout, "env-begin", "env-end");
            let sandbox = h
                .containerizer
                .sandbox(id)
                .expect("known")
                .expect("sandbox");
            assert!(env.contains(&"FOO=bar"), "{env:?}");
            assert!(
                env.contains(&format!("MESOS_SANDBOX={}", sandbox.display()).as_str()),
                "{env:?}"
            );
            assert!(
                !env.iter()
                    .any(|v| v.starts_with("CARGO") || v.starts_with("RUST")),
                "the agent's environment leaked: {env:?}"
            );
            assert_eq!(one(&stdout, "cwd"), sandbox.display().to_string());
            assert_eq!(stderr, "to-stderr\n", "stderr lands in the sandbox");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_executor_keeps_only_the_default_capabilities() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let mut request = h.shell("inside-root", OBSERVE);
            request.command.user = Some("root".into());
            let (termination, stdout, _) = h.run_to_end(request).await;
            assert_eq!(termination.exit_code, Some(0), "{stdout}");
            let expected = format!("{:016x}", capability_mask(&DEFAULT_CAPABILITIES));
            let status = tagged(&stdout, "status");
            for field in ["CapEff:", "CapPrm:", "CapBnd:"] {
                let value = status
                    .iter()
                    .find_map(|l| l.strip_prefix(field))
                    .map(str::trim);
                assert_eq!(value, Some(expected.as_str()), "{field} in {status:?}");
            }
            assert_eq!(one(&stdout, "pid"), "1");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_rootfs_is_the_root_and_the_sandbox_is_mounted() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            h.write_test_image();
            let id = "inside-image";
            let mut request = h.shell(
                id,
                r#"
                read m < /etc/marker; echo "marker $m"
                [ -e /etc/removed ] && echo "whiteout-ignored"
                for f in /opaque/*; do echo "opaque $f"; done
                [ -e /work ] && echo "host-visible"
                [ -e /usr ] && echo "host-visible /usr"
                echo "sandbox-env $MESOS_SANDBOX"
                echo "cwd $(pwd)"
                echo "image-env $FROM_IMAGE"
                echo hello > /mnt/mesos/sandbox/from-container
                echo x > /dev/null && echo "dev-null ok"
                for d in /dev/*; do echo "dev $d"; done
                echo "pid $$"
                for p in /proc/[0-9]*; do echo "proc $p"; done
                "#,
            );
            request.image = Some("busybox:test".into());
            let (termination, stdout, stderr) = h.run_to_end(request).await;
            assert_eq!(termination.exit_code, Some(0), "{stdout}\n{stderr}");
            assert_eq!(one(&stdout, "marker"), "from-the-image");
            assert!(tagged(&stdout, "whiteout-ignored").is_empty(), "{stdout}");
            assert_eq!(
                tagged(&stdout, "opaque"),
                ["/opaque/new"],
                "opaque dir hides the lower layer"
            );
            assert!(!stdout.contains("host-visible"), "{stdout}");
            assert_eq!(one(&stdout, "sandbox-env"), "/mnt/mesos/sandbox");
            assert_eq!(one(&stdout, "cwd"), "/mnt/mesos/sandbox");
            assert_eq!(one(&stdout, "image-env"), "yes");
            assert_eq!(one(&stdout, "dev-null"), "ok");
            let devices = tagged(&stdout, "dev");
            for device in [
                "/dev/null",
                "/dev/zero",
                "/dev/urandom",
                "/dev/pts",
                "/dev/shm",
                "/dev/tty",
            ] {
                assert!(devices.contains(&device), "{device} missing: {devices:?}");
            }
            assert_eq!(one(&stdout, "pid"), "1");
            let sandbox = h
                .containerizer
                .sandbox(id)
                .expect("known")
                .expect("sandbox");
            assert_eq!(
                std::fs::read_to_string(sandbox.join("from-container")).expect("written"),
                "hello\n"
            );

            h.containerizer.destroy(id).await.expect("destroy");
            assert!(
                common::mounts_mentioning(id).is_empty(),
                "mounts left: {:?}",
                common::mounts_mentioning(id)
            );
            assert!(!h
                .work_dir()
                .join("provisioner/containers")
                .join(id)
                .exists());
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_timings_cover_every_step_in_order() {
    if !can_run() {
        return;
    }
    Harness::new()
        .run(async |h| {
            let launched = h
                .containerizer
                .launch(h.shell("timed", "true"))
                .await
                .expect("launch");
            let steps: Vec<Step> = launched
                .timings
                .steps()
                .iter()
                .map(|(step, _)| *step)
                .collect();
            for step in [
                Step::Validate,
                Step::Clone,
                Step::CgroupAttach,
                Step::WaitParent,
                Step::Setsid,
                Step::Exec,
            ] {
                assert!(steps.contains(&step), "{step} missing from {steps:?}");
            }
            let at = |step: Step| launched.timings.started(step).expect("step ran");
            // The helper runs nothing of the container's set-up before the
            // parent has attached and checkpointed the pid.
            assert!(
                at(Step::Setsid) > at(Step::CgroupAttach),
                "{:?}",
                launched.timings
            );
            assert!(
                at(Step::Setsid) > at(Step::Release),
                "{:?}",
                launched.timings
            );
            assert!(at(Step::Exec) > at(Step::Setsid));
            assert!(launched.timings.to_exec() <= launched.timings.to_confirmed());
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_namespace_has_only_a_working_loopback() {
    if !can_run() {
        return;
    }
    Harness::with(|config| config.namespaces.net = true)
        .run(async |h| {
            let script = r#"
                while read -r l; do echo "netdev $l"; done < /proc/self/net/dev
                python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); socket.create_connection(s.getsockname()); print("loopback up")'
            "#;
            let (termination, stdout, stderr) = h.run_to_end(h.shell("netns", script)).await;
            assert_eq!(termination.exit_code, Some(0), "{stdout}\n{stderr}");
            let interfaces: Vec<&str> = tagged(&stdout, "netdev")
                .iter()
                .filter_map(|line| line.split_once(':').map(|(name, _)| name.trim()))
                .filter(|name| !name.contains('|'))
                .collect();
            assert_eq!(interfaces, ["lo"], "{stdout}");
            assert_eq!(one(&stdout, "loopback"), "up");
        })
        .await;
}
