//! Running suites and printing the results table.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The outcome of one conformance case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Short name of the case, unique within its suite.
    pub name: String,
    /// `Ok` when the case passed, otherwise what went wrong.
    pub outcome: Result<(), String>,
}

impl CaseResult {
    /// A passed case.
    pub fn pass(name: impl Into<String>) -> Self {
        Self { name: name.into(), outcome: Ok(()) }
    }

    /// A failed case with the reason.
    pub fn fail(name: impl Into<String>, why: impl Into<String>) -> Self {
        Self { name: name.into(), outcome: Err(why.into()) }
    }

    /// A case that passed when `outcome` is `Ok`.
    pub fn from_result(name: impl Into<String>, outcome: Result<(), String>) -> Self {
        Self { name: name.into(), outcome }
    }
}

/// A named suite of conformance cases.
#[derive(Clone, Copy)]
pub struct Suite {
    /// The name used on the command line (`rtc-conformance run NAME`).
    pub name: &'static str,
    /// One line saying what the suite checks.
    pub about: &'static str,
    /// Runs every case of the suite.
    pub run: fn(&Context) -> Vec<CaseResult>,
}

/// What suites may need from their environment.
#[derive(Debug, Clone)]
pub struct Context {
    /// The repository root (for fixtures).
    pub root: PathBuf,
    /// A Python interpreter with the pinned peer packages installed, if any.
    pub python: Option<PathBuf>,
    /// This runner's own executable, for suites that spawn it as a peer process.
    pub runner_exe: Option<PathBuf>,
}

impl Context {
    /// Builds the context from the environment: `RTC_PYTHON` (or `.venv/bin/python`
    /// under the repository root when it exists) for the peer packages.
    pub fn from_env() -> Self {
        let root =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        let python = std::env::var_os("RTC_PYTHON").map(PathBuf::from).or_else(|| {
            let p = root.join(".venv/bin/python");
            p.exists().then_some(p)
        });
        Self { root, python, runner_exe: std::env::current_exe().ok() }
    }

    /// A path to a fixture file under `conformance/fixtures`.
    pub fn fixture(&self, name: &str) -> PathBuf {
        self.root.join("conformance/fixtures").join(name)
    }

    /// The Python interpreter, or an error explaining how to get one.
    pub fn require_python(&self) -> Result<&PathBuf, String> {
        self.python.as_ref().ok_or_else(|| {
            "no Python with the peer packages: run scripts/test.sh (it creates .venv) or set RTC_PYTHON".to_string()
        })
    }

    /// Starts `conformance/peers/<script>` with `args` under the peer
    /// packages' Python, its stdin, stdout and stderr piped; it is killed
    /// when its handle drops. Needs a tokio runtime.
    pub fn spawn_peer<I, S>(&self, script: &str, args: I) -> Result<tokio::process::Child, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        use std::process::Stdio;
        let py = self.require_python()?;
        tokio::process::Command::new(py)
            .arg(self.root.join("conformance/peers").join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("spawn {} {script}: {e}", py.display()))
    }
}

/// The results of one suite.
#[derive(Debug)]
pub struct SuiteReport {
    /// Suite name.
    pub name: &'static str,
    /// Every case's result, in order.
    pub cases: Vec<CaseResult>,
    /// Wall time the suite took.
    pub elapsed: Duration,
}

impl SuiteReport {
    /// Number of passed cases.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.outcome.is_ok()).count()
    }

    /// Number of failed cases.
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
}

/// Runs one suite; a panic inside it counts as one failed case.
pub fn run_suite(suite: &Suite, ctx: &Context) -> SuiteReport {
    let start = Instant::now();
    let cases = match catch_unwind(AssertUnwindSafe(|| (suite.run)(ctx))) {
        Ok(cases) if cases.is_empty() => vec![CaseResult::fail("suite", "the suite ran no case")],
        Ok(cases) => cases,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            vec![CaseResult::fail("suite", format!("panicked: {what}"))]
        }
    };
    SuiteReport { name: suite.name, cases, elapsed: start.elapsed() }
}

/// Formats the results table, failures listed under it, and the closing
/// `N passed, N failed` line.
pub fn render(reports: &[SuiteReport]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{:<12} {:>6} {:>7} {:>7} {:>9}", "suite", "cases", "passed", "failed", "time");
    let _ = writeln!(out, "{}", "-".repeat(45));
    for r in reports {
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>7} {:>7} {:>8.2}s",
            r.name,
            r.cases.len(),
            r.passed(),
            r.failed(),
            r.elapsed.as_secs_f64()
        );
    }
    let failures: Vec<_> = reports
        .iter()
        .flat_map(|r| r.cases.iter().filter_map(move |c| c.outcome.as_ref().err().map(|e| (r.name, &c.name, e))))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for (suite, case, why) in failures {
            let _ = writeln!(out, "  {suite}/{case}: {why}");
        }
    }
    let passed: usize = reports.iter().map(SuiteReport::passed).sum();
    let failed: usize = reports.iter().map(SuiteReport::failed).sum();
    let _ = writeln!(out, "\n{passed} passed, {failed} failed");
    out
}
