"""Prints bench/run's results: every round, then the medians."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
rounds = sorted({r["round"] for r in rows})


def pick(round_, scenario, label=None):
    for r in rows:
        if r["round"] == round_ and r["scenario"] == scenario and r.get("label") == label:
            return r
    return None


def storm_columns(name, storm):
    """An arrival storm's latency and the kernel's counters, or dashes."""
    storm = storm or {}
    took = storm.get("time_to_full_snapshot", {})
    kernel = storm.get("kernel", {})
    return {
        f"{name} p50 ms": took.get("p50_ms", "-"),
        f"{name} p99 ms": took.get("p99_ms", "-"),
        f"{name} overflows": kernel.get("listen_overflows", "-"),
        f"{name} SYN retransmits": kernel.get("syn_retransmits", "-"),
    }


table = []
for n in rounds:
    base = pick(n, "pgbench")["tps"]
    b0 = pick(n, "pgbench", "B0")
    flash = pick(n, "flash-sale")
    hot = pick(n, "hot-seat")
    rest = pick(n, "rest-flash-sale")
    again = pick(n, "rest-flash-sale", "history")
    storm = pick(n, "arrival-storm")
    after_fanout = pick(n, "arrival-storm", "after-fanout")
    leaving = pick(n, "arrival-storm", "leaving")
    back = pick(n, "reconnect-storm")
    sale = pick(n, "on-sale") or {}
    fan = pick(n, "fanout")
    small = pick(n, "fanout", "small")
    six = pick(n, "fanout", "6k")
    t4 = pick(n, "idle", "T4")
    t5 = pick(n, "idle", "T5")
    table.append({
        "baseline tps": base,
        "B0 tps (old schema)": b0["tps"] if b0 else "-",
        "T1 bookings/s": flash["bookings_per_sec"],
        "T1 ratio": round(flash["bookings_per_sec"] / base, 2),
        "T1 vs B0": round(flash["bookings_per_sec"] / b0["tps"], 2) if b0 else "-",
        "T1 p99 ms": flash["booking_latency"]["p99_ms"],
        "T1 consistent": flash["watchers_consistent"],
        "B1 server us/booking": flash.get("server_cpu_us_per_booking", "-"),
        "B1 load us/booking": flash.get("load_cpu_us_per_booking", "-"),
        "B2 REST bookings/s": rest["bookings_per_sec"] if rest else "-",
        "B2 vs B0": round(rest["bookings_per_sec"] / b0["tps"], 2) if rest and b0 else "-",
        "B2 p99 ms": rest["booking_latency"]["p99_ms"] if rest else "-",
        "B2 server us/booking": rest.get("server_cpu_us_per_booking", "-") if rest else "-",
        "B2 load us/booking": rest.get("load_cpu_us_per_booking", "-") if rest else "-",
        "B2 with history bookings/s": again["bookings_per_sec"] if again else "-",
        "B2 with history vs B0": round(again["bookings_per_sec"] / b0["tps"], 2) if again and b0 else "-",
        "T2 winners": hot["winners"],
        "T2 answered": hot["answered"],
        "T2 p99 ms": hot["time_to_answer"]["p99_ms"],
        "T3 p99 ms": fan["request_to_receipt"]["p99_ms"],
        "T3 p50 ms": fan["request_to_receipt"]["p50_ms"],
        "T3 missed": fan["missed"],
        "B3 server us/delivery": fan.get("server_cpu_us_per_delivery", "-"),
        "B3 load us/delivery": fan.get("load_cpu_us_per_delivery", "-"),
        "B3 6k watchers p99 ms": six["request_to_receipt"]["p99_ms"] if six else "-",
        "T3 2k watchers p99 ms": small["request_to_receipt"]["p99_ms"],
        "T4 bytes/session": t4["bytes_per_session"],
        "T5 sessions": t5["sessions"],
        "T5 received": t5["broadcast_received"],
        "T5 bytes/session": t5["bytes_per_session"],
        "T5 GiB per 1M": t5["projected_gib_for_1m_sessions"],
        "B4 complete": f'{storm["complete_snapshots"]}/{storm["sessions"]}' if storm else "-",
        "B4 p50 ms": storm["time_to_full_snapshot"]["p50_ms"] if storm else "-",
        "B4 p99 ms": storm["time_to_full_snapshot"]["p99_ms"] if storm else "-",
        "B4 peak MiB": storm.get("server_peak_rss_mib", "-") if storm else "-",
        "B4 listen overflows": storm.get("kernel", {}).get("listen_overflows", "-") if storm else "-",
        "B4 SYN retransmits": storm.get("kernel", {}).get("syn_retransmits", "-") if storm else "-",
        **storm_columns("B4 after fan-out", after_fanout),
        **storm_columns("B4 with 8,000 leaving", leaving),
        "B8 on-sale joins/s": sale.get("joins_per_sec", "-"),
        "B8 joined": sale.get("joined", "-"),
        "B8 bytes/waiting session/min": sale.get("bytes_per_waiting_session_per_minute", "-"),
        "B8 admitted": sale.get("admitted", "-"),
        "B8 admission to booking p50 ms": sale.get("admission_to_booking", {}).get("p50_ms", "-"),
        "B8 admission to booking p99 ms": sale.get("admission_to_booking", {}).get("p99_ms", "-"),
        "B5 equal": back["equal_to_database"] if back else "-",
        "B5 all back s": back["all_back_seconds"] if back else "-",
        "B5 snapshot reads": back["snapshot_reads_after_restart"].get("state", "-") if back else "-",
        "B5 bytes/reconnect": back.get("bytes_per_reconnect", "-") if back else "-",
        "B5 resumed": back.get("resumes_after_restart", {}).get("resumed", "-") if back else "-",
    })

keys = list(table[0])
width = max(len(k) for k in keys)
print(f"{'':<{width}}  " + "  ".join(f"run {n:<8}" for n in rounds) + "  median")
for k in keys:
    values = [t[k] for t in table]
    numeric = [v for v in values if isinstance(v, (int, float))]
    median = statistics.median(numeric) if len(numeric) == len(values) else "-"
    print(f"{k:<{width}}  " + "  ".join(f"{str(v):<12}" for v in values) + f"  {median}")
