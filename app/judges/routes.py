from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request

from app.deps import Admin, SessionDep, Viewer
from app.errors import Conflict
from app.judges import repository, service
from app.judges.api import JudgeOut, TrainIn
from app.judges.models import TrainedJudge
from app.label_schemas import repository as schemas
from app.label_schemas.models import LabelSchema
from app.validation import VersionInPath

router = APIRouter(prefix="/v1/schemas", tags=["judges"])


def _out(schema: LabelSchema, judge: TrainedJudge) -> JudgeOut:
    return JudgeOut(schema_name=schema.name, version=judge.version, state=judge.state,
                    active=judge.active, model_id=judge.model_id,
                    prompt_version=judge.prompt_version, schema_version=judge.schema_version,
                    data=judge.data, metrics=judge.metrics, error=judge.error,
                    created_at=judge.created_at, finished_at=judge.finished_at)


@router.post("/{name}/judge/train", status_code=202, response_model=JudgeOut,
             response_model_by_alias=True)
def train(name: str, body: TrainIn, principal: Admin, session: SessionDep, request: Request,
          background: BackgroundTasks) -> JudgeOut:
    """Fine-tune the bundled judge on this schema's labels, from its examples and reviewed
    items, on a background thread of this process (minutes on a CPU). Poll the judges list;
    activate the new version when its metrics look right."""
    if service.training_running():
        raise Conflict("a judge is being trained in this process already; try again later")
    schema = schemas.get_schema(session, principal.project_id, name)
    version = schemas.get_version(session, schema)
    options = service.TrainOptions(**body.model_dump())
    judge = service.start(session, schema, version, options)
    # After the response, so after the commit: the thread must find the row.
    background.add_task(service.run_in_background, request.app.state.session_factory,
                        request.app.state.runtime, judge.id, options)
    return _out(schema, judge)


@router.get("/{name}/judges", response_model=list[JudgeOut], response_model_by_alias=True)
def list_judges(name: str, principal: Viewer, session: SessionDep) -> list[JudgeOut]:
    """Every trained judge version of the schema, with what it learnt from and its metrics."""
    schema = schemas.get_schema(session, principal.project_id, name)
    return [_out(schema, judge) for judge in repository.list_judges(session, schema.id)]


@router.post("/{name}/judges/{version}/activate", response_model=JudgeOut,
             response_model_by_alias=True)
def activate(name: str, version: VersionInPath, principal: Admin, session: SessionDep) -> JudgeOut:
    """Ask this judge (instead of the default one) for the schema's items from now on."""
    schema = schemas.get_schema(session, principal.project_id, name)
    return _out(schema, service.activate(session, schema, version))


@router.post("/{name}/judges/{version}/deactivate", response_model=JudgeOut,
             response_model_by_alias=True)
def deactivate(name: str, version: VersionInPath, principal: Admin,
               session: SessionDep) -> JudgeOut:
    """Go back to the default judge for this schema."""
    schema = schemas.get_schema(session, principal.project_id, name)
    return _out(schema, service.deactivate(session, schema, version))
