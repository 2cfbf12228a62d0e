//! `cfa bench compare`.

use anyhow::Result;

#[derive(clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub run: crate::bench_cmd::RunArgs,
}

pub fn run(args: CompareArgs) -> Result<()> {
    crate::bench_cmd::run_workloads(&args.run).map(|_| ())
}
