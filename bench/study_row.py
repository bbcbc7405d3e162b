"""One study of a bench script's studies.db as a result row, for
bench/asha_vs_plain.sh and bench/default_vs_random.sh: architectures, runs
per rung, tokens spent, the best trial (from `flashnas search --json`, saved
as WORK/NAME.json) and the summed training seconds."""
import json


def study_row(db, work, name):
    rep = json.load(open(f"{work}/{name}.json"))
    sid = db.execute("SELECT id FROM studies WHERE name = ?", (name,)).fetchone()[0]
    per_rung = dict(db.execute(
        "SELECT r.rung, COUNT(*) FROM trial_rungs r JOIN trials t ON t.id = r.trial_id"
        " WHERE t.study_id = ? AND r.status = 'done' GROUP BY r.rung", (sid,)).fetchall())
    train_s = db.execute("SELECT SUM(r.train_s) FROM trial_rungs r JOIN trials t ON t.id = r.trial_id"
                         " WHERE t.study_id = ?", (sid,)).fetchone()[0]
    span = db.execute("SELECT MIN(created_at), MAX(finished_at) FROM trials WHERE study_id = ?", (sid,)).fetchone()
    best = rep.get("best", {})
    return {"architectures": per_rung.get(0, 0), "per_rung": [per_rung.get(r, 0) for r in sorted(per_rung)],
            "started": span[0], "finished": span[1], "tokens_spent": rep["tokens_spent"],
            "best_loss": best.get("loss"), "best_bpb": best.get("bpb"), "best_trial": best.get("trial"),
            "best_genome": best.get("genome"), "train_s": train_s}
