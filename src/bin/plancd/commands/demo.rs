//! `plancd demo`

use std::path::PathBuf;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::demo::create_repository;
use plancd::ops::reconcile::{ReconcileOptions, default_sandbox_opener, reconcile};
use tokio::sync::watch;

use super::progress::Progress;
use super::reconcile::{failure, summarise};
use super::{Failure, print_status_table};

/// Arguments of `plancd demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to create the demo repository (default: a new temporary folder, kept afterwards).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Creates the repository, reconciles it with the process sandbox and model agents of the
/// scripted model, and shows what happened.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let dir = match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| Failure::input(anyhow::anyhow!("cannot create {}: {e}", dir.display())))?;
            if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
                return Err(Failure::input(anyhow::anyhow!("{} is not empty", dir.display())));
            }
            dir
        }
        None => tempfile::Builder::new()
            .prefix("plancd-demo-")
            .tempdir()
            .map_err(|e| Failure::outside(anyhow::anyhow!("cannot create a temporary folder: {e}")))?
            .keep(),
    };
    let commit = create_repository(&dir).map_err(Failure::outside)?;
    println!("demo repository: {}", dir.display());
    println!(
        "plan committed on main as {}: 4 tasks (architect, 2 x coder, tester), model agents replaying recorded replies (scripted), process sandbox\n",
        &commit.to_string()[..12]
    );
    let runtime = super::runtime()?;
    let progress = Progress::new();
    let (cancel_tx, cancel) = watch::channel(false);
    runtime.spawn(super::stop_on_signals(cancel_tx));
    let env = Env::from_pairs(std::iter::empty());
    let opts = ReconcileOptions {
        repo: dir.clone(),
        branch: None,
        env,
        sandbox: default_sandbox_opener(),
        events: Some(progress.sink()),
        cancel,
        shared: false,
        remote: None,
    };
    let result = runtime.block_on(reconcile(opts));
    progress.finish();
    let report = result.map_err(failure)?;
    println!();
    print_status_table(&dir, None);
    let code = summarise(&report);
    let d = dir.display();
    println!(
        "\nlook around with plain git:\n  \
         git -C {d} for-each-ref --format='%(refname) %(contents:subject)' refs/ai/tasks/\n  \
         git -C {d} log --oneline --graph ai/generated/sma-crossover/t4_edge_tests\n  \
         git -C {d} show --stat ai/sma-crossover/t3_strategy/1\n  \
         git -C {d} log -1 --format=%B ai/generated/sma-crossover/t2_indicators\n\
         or with plancd:\n  \
         plancd -C {d} status\n  \
         plancd -C {d} events                                         # every state change\n  \
         plancd -C {d} describe sma-crossover/t2_indicators            # one task: attempts, branch todo, tests, result\n  \
         plancd -C {d} logs sma-crossover/t2_indicators --attempt 1    # the failing test\n  \
         plancd -C {d} logs sma-crossover/t2_indicators_branch_01      # the fix, tested"
    );
    Ok(code)
}
