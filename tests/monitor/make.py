#!/usr/bin/env python3
"""Writes tests/monitor/healthy-24h.jsonl: a 24 h monitor log at 5-minute rounds (289 rounds,
checkpoints at 0/6/12/18/24 h), built from round 0 of lab-clean-20s.jsonl, a real run recorded on
the lab (`clan-coord monitor --for 20s --every 2s`). Only timestamps, round numbers, durations and
RTTs (deterministic jitter around the recorded values) differ. The broken variants (gap,
disconnection, error line, short span) are derived from it in tests/monitor.rs.
Run from the crate root: python3 tests/monitor/make.py"""
import json, math
base = json.loads(open("tests/monitor/lab-clean-20s.jsonl").readline())
t0 = 1795600800.0  # a fixed start, 2026-11-25
with open("tests/monitor/healthy-24h.jsonl", "w") as out:
    for n in range(289):
        r = json.loads(json.dumps(base))
        r["round"], r["ts"], r["secs"] = n, t0 + n * 300.0 + 0.004 * (n % 7), round(0.7 + 0.05 * (n % 5), 3)
        r["for_secs"], r["every_secs"] = 86400.0, 300.0
        for i, p in enumerate(r["pairs"]):
            j = 1.0 + 0.15 * math.sin(n / 9.0 + i)
            p["rtt_avg"], p["rtt_max"] = round(p["rtt_avg"] * j, 3), round(p["rtt_max"] * j * 1.1, 3)
        out.write(json.dumps(r, separators=(",", ":")) + "\n")
print("289 rounds")
