"""One refit of the learnt scorer through the service path, timed: Banking77 as a project.

A fresh SQLite database holds the banking77 schema and the pool of train (outside the dev split,
bench.common) as the project's items, n per label of them reviewed (exemplars with their
vectors, as the review endpoint stores them). `app/scorer/service.refit` then runs twice:

- `first`: right after the upload, no item vector kept yet: the refit reads the pool, embeds
  unreviewed items for at most EMBED_SECONDS, propagates, fits and stores the version (the label
  index of the schema is built first, as on a process's first request);
- `steady`: every unreviewed item's vector kept (what later refits see): reads, propagates,
  fits and stores.

Each reports the refit's seconds until the scorer was stored (from then on it ranks new items)
and in all (the held-out heads the calibrator refits with are fitted and stored after it).

    python bench/scorer_refit.py --schema schemas/banking77.yaml --train train.csv \
        --test test.csv --per-label 20 --out bench/results/scorer_refit.json [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.auth.service import get_or_create_project  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import make_engine, make_session_factory, upgrade_database, utcnow  # noqa: E402
from app.items.models import Item  # noqa: E402
from app.items.service import text_hash  # noqa: E402
from app.label_schemas.format import validate_schema_document  # noqa: E402
from app.label_schemas.service import push_schema  # noqa: E402
from app.labelling.models import Exemplar  # noqa: E402
from app.rac.engine import Engine  # noqa: E402
from app.rac.index_store import IndexStore  # noqa: E402
from app.runtime import Runtime  # noqa: E402
from app.scorer import service  # noqa: E402
from app.scorer.models import ItemVector  # noqa: E402
from bench.learnt_scorer import Setup, _reviewed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--per-label", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    s = Setup(args, dev_only=True)
    reviewed = set(_reviewed(s, args.per_label))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        engine = make_engine(settings.resolved_database_url)
        upgrade_database(engine)
        factory = make_session_factory(engine)
        runtime = Runtime(settings, s.embedder, None, Engine(s.embedder, None),  # type: ignore[arg-type]
                          IndexStore(settings.index_dir, s.embedder))  # no judge is asked
        with factory() as session:
            project = get_or_create_project(session, "bench")
            doc = validate_schema_document(yaml.safe_load(args.schema.read_text()))
            schema_id = push_schema(session, project.id, doc).schema.id
            items = [Item(project_id=project.id, external_id=str(i), text=text,
                          text_hash=text_hash(text), meta={})
                     for i, (text, _) in enumerate(s.pool)]
            session.add_all(items)
            session.flush()
            session.add_all(Exemplar(project_id=project.id, schema_id=schema_id,
                                     item_id=items[i].id, label=s.pool[i][1],
                                     embedder_id=s.embedder.model_id,
                                     vector=s.pool_vectors[i].tobytes())
                            for i in sorted(reviewed))
            session.commit()
            item_ids = [x.id for x in items]
        report: dict = {"per_label": args.per_label, "reviews": len(reviewed),
                        "items": len(s.pool), "pool_limit": service.POOL_LIMIT,
                        "embed_seconds": service.EMBED_SECONDS}
        for name in ("first", "steady"):
            if name == "steady":  # every unreviewed item embedded, as after a few refits
                with factory() as session:
                    kept = set(session.scalars(select(ItemVector.item_id)))
                    session.add_all(ItemVector(item_id=item_ids[i],
                                               embedder_id=s.embedder.model_id,
                                               vector=np.asarray(s.pool_vectors[i]).tobytes())
                                    for i in range(len(item_ids))
                                    if i not in reviewed and item_ids[i] not in kept)
                    session.commit()
            load = os.getloadavg()
            started, wall = time.perf_counter(), utcnow()
            row = service.refit(factory, runtime, schema_id)
            seconds = time.perf_counter() - started
            with factory() as session:
                vectors = session.scalar(select(func.count()).select_from(ItemVector))
            # the scorer ranks new items from its row's creation; the held-out heads the
            # calibrator refits with are stored after it, within the same refit
            stored = (row.created_at.replace(tzinfo=wall.tzinfo) - wall).total_seconds()
            report[name] = {"refit_seconds": seconds, "scorer_stored_after_seconds": stored,
                            "held_out_heads_seconds": seconds - stored,
                            "fit_seconds": row.fit_seconds,
                            "n_reviews": row.n_reviews, "item_vectors_kept": vectors,
                            "load_average": load}
            print(name, json.dumps(report[name]), flush=True)
        engine.dispose()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
