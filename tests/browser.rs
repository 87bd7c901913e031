//! The browser suite (tests/browser/run.mjs) under `cargo test`: the example apps driven by a
//! real headless Chromium through playwright-core.
//!
//! Needs `npm ci` in tests/browser and a Chromium at `CHROMIUM_PATH` (default
//! `/usr/bin/chromium`). Without them the test prints `skipped: …` and passes, unless
//! `SESSION_TEST_REQUIRE_SERVICES=1` (as in CI), where it fails. It runs the example binaries
//! that cargo built next to this test (`cargo test` builds them; `cargo test --test browser`
//! alone does not, so run `cargo build --examples` first), and refuses stale ones.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

/// The longest the whole browser suite may take before it is killed.
const SUITE_TIMEOUT: Duration = Duration::from_secs(120);

fn require_services() -> bool {
    std::env::var("SESSION_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The prebuilt example binary `name`. `cargo test` builds the package's examples next to the
/// test binary: target/<profile>/deps/browser-… → target/<profile>/examples/<name>.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "example binary {} is missing: run `cargo build --examples` (cargo test builds it too)",
        bin.display()
    );
    assert_fresh(&bin);
    bin
}

/// Fails if a source the binary was built from (cargo's dep-info beside it lists them) changed
/// after it was built: `cargo test --test browser` alone does not rebuild the examples, and a
/// stale binary would test old code.
fn assert_fresh(bin: &Path) {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return;
    };
    let Ok(dep_info) = std::fs::read_to_string(bin.with_extension("d")) else {
        return;
    };
    let Some((_, sources)) = dep_info.lines().next().and_then(|line| line.split_once(": ")) else {
        return;
    };
    // Make's syntax: a space inside a path is escaped as `\ `.
    let sources = sources.replace("\\ ", "\0");
    for source in sources.split_whitespace().map(|s| PathBuf::from(s.replace('\0', " "))) {
        let changed = source.metadata().and_then(|m| m.modified()).is_ok_and(|t| t > built);
        assert!(
            !changed,
            "{} changed after {} was built: run `cargo build --examples` first",
            source.display(),
            bin.display()
        );
    }
}

/// What the suite needs from outside cargo, or why it cannot run.
fn missing_prerequisite(suite_dir: &Path, chromium: &Path) -> Option<String> {
    if !suite_dir.join("node_modules").join("playwright-core").is_dir() {
        return Some(format!(
            "no node_modules in {}: run `npm ci` there",
            suite_dir.display()
        ));
    }
    if !chromium.is_file() {
        return Some(format!(
            "no Chromium at {}: `apt-get install chromium` or set CHROMIUM_PATH",
            chromium.display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no `node` on PATH".to_owned());
    }
    None
}

/// Kills the child and everything it started (it leads its own process group).
fn kill_tree(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn example_apps_behave_in_headless_chromium() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite_dir = manifest_dir.join("tests").join("browser");
    let chromium = PathBuf::from(std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()));
    if let Some(why) = missing_prerequisite(&suite_dir, &chromium) {
        assert!(
            !require_services(),
            "SESSION_TEST_REQUIRE_SERVICES=1 but the browser suite cannot run: {why}"
        );
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(std::io::stderr(), "skipped: browser suite: {why}");
        return;
    }
    let app = example_binary("app");
    let login = example_binary("login");

    let mut command = Command::new("node");
    command
        .arg("--test-reporter=spec")
        .arg(suite_dir.join("run.mjs"))
        .current_dir(&suite_dir)
        .env("EXAMPLE_APP_BIN", &app)
        .env("EXAMPLE_LOGIN_BIN", &login)
        .env("CHROMIUM_PATH", &chromium);
    #[cfg(unix)]
    {
        // Its own process group, so a timeout can end node, Chromium and the apps together.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command.spawn().expect("start node");

    let deadline = Instant::now() + SUITE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                kill_tree(&mut child);
                panic!("the browser suite did not finish within {SUITE_TIMEOUT:?} and was killed");
            }
            Err(e) => {
                kill_tree(&mut child);
                panic!("waiting for the browser suite failed: {e}");
            }
        }
    };
    assert!(
        status.success(),
        "the browser suite failed ({status}); its output is above"
    );
}
