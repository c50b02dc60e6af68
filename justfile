# clan-coordination: validate a clan-core fleet. `just` lists recipes.
default:
    @just --list --unsorted

# main job: lab fleet up, AC1–AC6 live, verdict table, lab down (root)
lab-check:
    cargo run --bin clan-coord -- lab check --install

# AC1–AC6 verdicts (offline replay of the story fleet, the recorded ZeroTier lab)
check:
    cargo run --bin clan-coord -- check --replay

# live suite through cargo test against a fresh lab
lab-live:
    cargo run -q --bin clan-coord -- lab up
    COORD_MACHINES=/var/lib/clan-coord-lab/machines.toml cargo test --features live --test coordination
    cargo run -q --bin clan-coord -- lab down

# all tests, offline
test:
    cargo test --workspace

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
    cargo clippy --all-targets --all-features --workspace -- -D warnings

# benchmark on the lab (root): harness vs ssh-per-command vs ControlMaster at 2 and 8 machines, scale at 2/4/8/16
bench reps="5":
    bench/bench.sh {{reps}}
