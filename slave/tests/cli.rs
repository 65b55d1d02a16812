//! `mesos-agent` on the command line: bad flags give one clear error naming
//! the flag and exit 1, from argv and from `MESOS_*` variables alike.

use std::process::{Command, Output};

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesos-agent"));
    command
        .args(args)
        .env_remove("MESOS_WORK_DIR")
        .env_remove("MESOS_MASTER");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run mesos-agent")
}

fn assert_fails_naming(output: &Output, flag: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(flag), "error should name {flag}: {stderr}");
    assert!(
        stderr.lines().count() <= 3,
        "one clear error, not a wall: {stderr}"
    );
}

#[test]
fn bad_flag_values_name_the_flag_and_exit_1() {
    let base = ["--master=127.0.0.1:5050", "--work_dir=/tmp/agent-cli"];
    assert_fails_naming(&agent(&[base[0], base[1], "--port=seventy"], &[]), "--port");
    assert_fails_naming(
        &agent(
            &[base[0], base[1], "--executor_registration_timeout=5s"],
            &[],
        ),
        "--executor_registration_timeout",
    );
    assert_fails_naming(
        &agent(
            &[
                base[0],
                base[1],
                "--isolation=cgroups/nope",
                "--launcher=linux",
            ],
            &[],
        ),
        "--isolation",
    );
    assert_fails_naming(
        &agent(
            &[
                base[0],
                base[1],
                "--resources=cpus:many",
                "--launcher=posix",
            ],
            &[],
        ),
        "--resources",
    );
    assert_fails_naming(
        &agent(&[base[0], base[1], "--no_such_flag=1"], &[]),
        "--no_such_flag",
    );
    assert_fails_naming(&agent(&[base[0]], &[]), "--work_dir");
    assert_fails_naming(&agent(&[base[1]], &[]), "--master");
}

#[test]
fn environment_variables_set_flags_too() {
    let output = agent(
        &["--master=127.0.0.1:5050", "--work_dir=/tmp/agent-cli"],
        &[("MESOS_PORT", "nope")],
    );
    assert_fails_naming(&output, "--port");
    let output = agent(
        &[],
        &[
            ("MESOS_MASTER", "127.0.0.1:5050"),
            ("MESOS_WORK_DIR", "/tmp/agent-cli"),
            ("MESOS_GC_DELAY", "1fortnight"),
        ],
    );
    assert_fails_naming(&output, "--gc_delay");
}

#[test]
fn help_exits_0() {
    let output = agent(&["--help"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("--work_dir"));
}
