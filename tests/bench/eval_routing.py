#!/usr/bin/env python3
"""Routing quality with no provider, on the evaluation sets in ../shared/eval/ (never copied into
personas). Prints top-1, top-3, emergency recall and precision for routing-dev.jsonl and top-1 for
Symptom2Disease, by running `consilium route` over them.

usage: tests/bench/eval_routing.py [--consilium build/bin/consilium] [--personas DIR] [--shared ../shared] [--misses]
"""
import argparse, csv, json, os, subprocess, sys, tempfile

def run_route(binary, personas, cases):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
        path = f.name
    try:
        args = [binary, "route", "--jsonl", path]
        if personas:
            args[2:2] = ["--personas", personas]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    return {r["id"]: r for r in (json.loads(l) for l in out.splitlines() if l.strip())}

def load_map(path):
    m = {}
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if not line or ":" not in line:
            continue
        k, v = line.split(":", 1)
        m[k.strip()] = [x.strip() for x in v.strip().strip("[]").split(",") if x.strip()]
    return m

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--consilium", default=os.path.join(root, "build", "bin", "consilium"))
    ap.add_argument("--personas", default=None)
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("--misses", action="store_true", help="list the cases routed wrongly (shows eval sentences)")
    ap.add_argument("--labels", action="store_true", help="per-label accuracy on Symptom2Disease and per-specialty "
                    "accuracy on routing-dev, without showing any sentence")
    a = ap.parse_args()

    dev = [json.loads(l) for l in open(os.path.join(a.shared, "eval", "routing-dev.jsonl"), encoding="utf-8") if l.strip()]
    cases = []
    for d in dev:
        c = {"id": d["id"], "profile": d.get("profile", {})}
        if "turns" in d:
            c["turns"] = d["turns"]
        else:
            c["text"] = d["text"]
        cases.append(c)
    got = run_route(a.consilium, a.personas, cases)
    n = top1 = top3 = 0
    tp = fp = fn = 0
    misses = []
    for d in dev:
        r = got[d["id"]]
        if "turns" in d:
            items = [(t, acc, em, r["turns"][i]) for i, (t, acc, em) in
                     enumerate(zip(d["turns"], d["accept_per_turn"], d["emergency_per_turn"]))]
        else:
            items = [(d["text"], d["accept"], d["emergency"], r)]
        for i, (text, accept, emergency, out) in enumerate(items):
            n += 1
            ok1 = out["specialist"] in accept
            top1 += ok1
            top3 += any(x in accept for x in out["top"][:3]) or ok1
            if emergency and out["emergency"]: tp += 1
            elif emergency: fn += 1
            elif out["emergency"]: fp += 1
            if not ok1 or emergency != out["emergency"]:
                misses.append((d["id"], i, out["specialist"], accept, emergency, out["emergency"], text[:90]))
    print(f"routing-dev: {n} turns  top-1 {100*top1/n:.1f}%  top-3 {100*top3/n:.1f}%  "
          f"emergency recall {100*tp/max(tp+fn,1):.1f}% ({tp}/{tp+fn})  precision {100*tp/max(tp+fp,1):.1f}% ({tp}/{tp+fp})")

    m = load_map(os.path.join(a.shared, "eval", "symptom2disease-map.yaml"))
    rows = list(csv.DictReader(open(os.path.join(a.shared, "eval", "symptom2disease.csv"), encoding="utf-8")))
    # The csv's index column repeats: number the rows ourselves.
    got2 = run_route(a.consilium, a.personas, [{"id": str(i), "text": r["text"]} for i, r in enumerate(rows)])
    ok = sum(1 for i, r in enumerate(rows) if got2[str(i)]["specialist"] in m.get(r["label"], []))
    print(f"symptom2disease: {len(rows)} cases  top-1 {100*ok/len(rows):.1f}%")
    if a.labels:
        per = {}
        for i, r in enumerate(rows):
            ok_i = got2[str(i)]["specialist"] in m.get(r["label"], [])
            t = per.setdefault(r["label"], [0, 0, {}])
            t[0] += ok_i
            t[1] += 1
            if not ok_i:
                w = got2[str(i)]["specialist"]
                t[2][w] = t[2].get(w, 0) + 1
        for k, (o, t, wrong) in sorted(per.items(), key=lambda kv: kv[1][0] / kv[1][1]):
            top_wrong = sorted(wrong.items(), key=lambda kv: -kv[1])[:4]
            print(f"S2D {k:35s} {o:3d}/{t}  routed instead to: {top_wrong}")
        spec = {}
        for d in dev:
            if "turns" in d:
                continue
            key = d["accept"][0]
            t = spec.setdefault(key, [0, 0])
            t[0] += got[d["id"]]["specialist"] in d["accept"]
            t[1] += 1
        bad = [(k, v) for k, v in spec.items() if v[0] < v[1]]
        print("routing-dev, first accepted specialty with misses:",
              ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(bad)))
    if a.misses:
        for mm in misses:
            print("MISS", *mm, sep=" | ")
        by_label = {}
        for i, r in enumerate(rows):
            if got2[str(i)]["specialist"] not in m.get(r["label"], []):
                by_label.setdefault(r["label"], []).append(got2[str(i)]["specialist"])
        for k, v in sorted(by_label.items(), key=lambda kv: -len(kv[1])):
            print("S2D", k, len(v), sorted(set(v))[:6])

if __name__ == "__main__":
    main()
