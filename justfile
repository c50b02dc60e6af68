# clan-coordination: validate a clan-core fleet. `just` lists recipes.
default:
    @just --list --unsorted

# AC1–AC4 verdicts (offline replay of the story fleet)
check:
    cargo run --bin clan-coord -- check

# all tests, offline
test:
    cargo test

# live suite against machines.toml (or COORD_MACHINES)
live:
    cargo test --features live --test coordination

# review inventory snapshots after an inventory change
review:
    cargo insta review

# what the checks would run on each machine
plan:
    cargo run --bin clan-coord -- plan

# formatting and lints as CI wants them
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets --all-features -- -D warnings
