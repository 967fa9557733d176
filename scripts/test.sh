#!/usr/bin/env bash
# The full test command (README): formatting, lints, then every test of the workspace,
# including the process tests that kill -9 the real binary. Needs only the Rust
# toolchain; installs nothing else today.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
