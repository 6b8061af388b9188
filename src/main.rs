//! The `gatewatch` command: a thin shell over the library (see `cli`).

use gatewatch::runtime::alloc::CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() -> std::process::ExitCode {
    gatewatch::cli::main(std::env::args_os().skip(1).collect())
}
