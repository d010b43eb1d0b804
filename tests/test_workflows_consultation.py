"""The consultation workflows: annual plan, topics, opinion reports, appraisal, micro and online.

Each workflow is driven through the public engine to every one of its final states, and each
has at least one refusal whose message names what was wrong.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from xieshang import (
    Actor,
    Engine,
    FixedClock,
    Forbidden,
    InvalidPayload,
    Registry,
    TransitionNotAllowed,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import BUNDLED_DIR

CN = timezone(timedelta(hours=8))
ORG = "demo_city_cppcc"
FILES = [
    "annual_consultation_plan",
    "consultation_topic",
    "opinion_report",
    "democratic_appraisal",
    "micro_consultation",
    "online_consultation",
    "proposal",
    "proposal_handling",
]
REGISTRY = Registry.from_texts(
    (f"{name}.yaml", (BUNDLED_DIR / f"{name}.yaml").read_text(encoding="utf-8")) for name in FILES
)


def who(name: str, *roles: str, unit: str | None = None) -> Actor:
    return Actor.of(name, *roles, org=ORG, unit=unit)


OFFICE = who("office", "cppcc_office")
PARTY_OFFICE = who("party-office", "party_office")
GOV_OFFICE = who("gov-office", "government_office")
CHAIRS = who("chairs", "chairpersons_council")
PSC = who("psc", "party_standing_committee")
MEMBER = who("m1", "member")
PUBLIC = who("citizen", "public")
COMMITTEE = who("econ", "special_committee")


def at(day: str, hour: int = 10) -> datetime:
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), CN).replace(hour=hour)


class Env:
    """An engine on a memory store with a clock the test moves."""

    def __init__(self) -> None:
        self.clock = FixedClock(at("2024-01-08"))
        self.engine = Engine(MemoryStore(), REGISTRY, self.clock)

    def on(self, day: str, hour: int = 10) -> Engine:
        self.clock.set(at(day, hour))
        return self.engine


@pytest.fixture
def env() -> Env:
    return Env()


FORMS = {
    "t1": "thematic_standing_meeting",
    "t2": "chair_interview",
    "t3": "inspection_consultation",
}


def plan_topic(tid: str, title: str, **extra: Any) -> dict[str, Any]:
    topic = {
        "id": tid,
        "title": title,
        "category": "society",
        "form": FORMS.get(tid, "bimonthly_forum"),
        "lead_leader": "王副主席",
        "responsible_department": "社会和法制委员会",
        "responsible_person": "李主任",
        "due_date": "2024-11-30",
    }
    topic.update(extra)
    return {k: v for k, v in topic.items() if v is not None}


TOPICS = [
    plan_topic("t1", "农村环境综合整治"),
    plan_topic("t2", "破解“上学难、上好学难”"),
    plan_topic("t3", "老旧小区加装电梯"),
]


def plan_at_approval(env: Env, topics: list[dict[str, Any]] = TOPICS) -> str:
    engine = env.on("2024-01-08")
    pid = engine.start(
        "annual_consultation_plan", {"year": 2024, "deadline": "2024-01-31"}, OFFICE
    ).id
    engine.fire(pid, "suggest_topic", MEMBER, {"title": "农村环境综合整治", "category": "ecology"})
    engine.fire(pid, "suggest_topic", PUBLIC, {"title": "老旧小区加装电梯"})
    engine = env.on("2024-02-01")
    engine.fire(pid, "close_collection", OFFICE)
    engine.fire(pid, "submit_for_joint_revision", OFFICE, {"topics": topics})
    engine.fire(pid, "submit_to_chairs", PARTY_OFFICE)
    engine.fire(pid, "chairs_reviewed", CHAIRS, {"decision": "agree"})
    return pid


def topic_of(engine: Engine, pid: str, tid: str) -> str:
    return next(c.id for c in engine.children(pid) if c.data["topic_id"] == tid)


# -- annual_consultation_plan ---------------------------------------------------------------


def test_collection_cannot_close_without_a_suggestion(env: Env) -> None:
    """close_collection needs at least one topic suggestion."""
    engine = env.engine
    pid = engine.start("annual_consultation_plan", {"year": 2024}, OFFICE).id
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "close_collection", OFFICE)
    assert "议题建议" in err.value.message
    assert engine.get(pid).state == "collecting"


def test_draft_with_a_topic_lacking_an_allowed_form_is_refused_naming_it(env: Env) -> None:
    """Every topic of the draft must be matched to one of the nine forms; the offender is named."""
    engine = env.engine
    pid = engine.start("annual_consultation_plan", {"year": 2024}, OFFICE).id
    engine.fire(pid, "suggest_topic", MEMBER, {"title": "低空经济发展"})
    engine.fire(pid, "close_collection", OFFICE)
    bad = [
        plan_topic("t1", "农村环境综合整治"),
        plan_topic("t9", "低空经济发展", form="quarterly_forum"),
    ]
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "submit_for_joint_revision", OFFICE, {"topics": bad})
    assert "低空经济发展" in err.value.message and "农村环境综合整治" not in err.value.message
    assert engine.get(pid).state == "drafting"


def test_approval_refused_when_a_topic_lacks_its_responsibility_breakdown(env: Env) -> None:
    """approve_plan needs lead leader, department, person and due date for every approved topic."""
    topics = [*TOPICS, plan_topic("t4", "低空经济发展", responsible_person=None)]
    pid = plan_at_approval(env, topics)
    engine = env.engine
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "approve_plan", PSC, {"approved": ["t1", "t2", "t3", "t4"]})
    assert "低空经济发展" in err.value.message and "责任人" in err.value.message
    assert engine.get(pid).state == "party_approval" and engine.children(pid) == []
    engine.fire(
        pid,
        "approve_plan",
        PSC,
        {"approved": ["t1", "t2", "t3"], "rejected": [{"id": "t4", "reason": "责任未落实"}]},
    )
    assert engine.get(pid).state == "in_force"


def test_approved_plan_starts_one_topic_per_approved_topic(env: Env) -> None:
    """Approval spawns one consultation_topic per approved topic, carrying its breakdown."""
    pid = plan_at_approval(env)
    engine = env.engine
    plan = engine.fire(pid, "approve_plan", PSC, {"approved": ["t1", "t3"]})
    kids = engine.children(pid)
    assert plan.data["planned_count"] == 2
    assert sorted((k.data["topic_id"], k.data["title"], k.data["form"]) for k in kids) == [
        ("t1", "农村环境综合整治", "thematic_standing_meeting"),
        ("t3", "老旧小区加装电梯", "inspection_consultation"),
    ]
    assert all(
        k.workflow == "consultation_topic"
        and k.state == "suggested"
        and k.org == ORG
        and k.data["responsible_person"] == "李主任"
        and k.data["plan_version"] == 1
        for k in kids
    )
    assert engine.verify() == []


def test_close_year_refused_while_a_topic_is_open(env: Env) -> None:
    """The year closes only when every topic is final; the open topics are named."""
    pid = plan_at_approval(env)
    engine = env.engine
    engine.fire(pid, "approve_plan", PSC, {"approved": ["t1", "t2"]})
    t1 = topic_of(engine, pid, "t1")
    engine.fire(t1, "approve", OFFICE)
    engine.fire(t1, "carry_over", OFFICE, reason="下半年无法召开")
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "close_year", OFFICE, {"summary": "全年执行情况"})
    assert "破解“上学难、上好学难”" in err.value.message
    assert "农村环境综合整治" not in err.value.message
    assert engine.get(pid).state == "in_force"


def test_revision_needs_the_chairpersons_review_before_approval(env: Env) -> None:
    """A revision goes through joint revision and the chairs' review again before approval."""
    pid = plan_at_approval(env)
    engine = env.engine
    engine.fire(pid, "approve_plan", PSC, {"approved": ["t1", "t2", "t3"]})
    engine.fire(pid, "propose_revision", PARTY_OFFICE, {"postponed": ["t2"]}, reason="调整时序")
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(pid, "approve_revision", PSC)
    assert "主席会议审议" in err.value.message
    assert engine.get(pid).data["plan_version"] == 1


def hold_and_submit(env: Env, tid: str, meeting: str = "2024-06-20", kind: str = "minutes") -> None:
    """Prepare and hold the meeting of a topic, then submit its outcome (clock ends after it)."""
    engine = env.on("2024-05-20")
    engine.fire(
        tid, "start_preparation", COMMITTEE, {"meeting_date": meeting, "activity_plan": "工作方案"}
    )
    engine = env.on("2024-05-27")
    engine.fire(tid, "send_notice", OFFICE, {"invitees": ["市教育局", "界别委员"]})
    engine = env.on("2024-06-05")
    engine.fire(tid, "send_materials", OFFICE, {"materials": ["调研报告"]})
    engine = env.on(meeting)
    engine.fire(tid, "hold_meeting", CHAIRS, {"attendance": 45})
    engine.fire(tid, "draft_outcome", COMMITTEE, {"kind": kind, "text": "会议纪要"})
    engine = env.on("2024-06-25")
    engine.fire(tid, "submit_outcome", OFFICE, {"recipients": ["party_committee", "government"]})


def test_plan_year_runs_from_collection_to_close_with_a_revision(env: Env) -> None:
    """Approve, revise as version 2 (one cancelled, one added: the approval applies both), end
    every topic, close the year."""
    pid = plan_at_approval(env)
    engine = env.engine
    engine.fire(pid, "approve_plan", PSC, {"approved": ["t1", "t2", "t3"]})
    t1, t2, t3 = (topic_of(engine, pid, t) for t in ("t1", "t2", "t3"))
    for tid in (t1, t2, t3):
        assert engine.fire(tid, "approve", OFFICE).state == "approved"
    engine = env.on("2024-04-01")
    engine.fire(
        pid,
        "propose_revision",
        PARTY_OFFICE,
        {"cancelled": ["t3"], "added": [plan_topic("t4", "城区共享单车停放管理")]},
        reason="市委新部署",
    )
    engine.fire(pid, "revise_jointly", PARTY_OFFICE)
    engine.fire(pid, "chairs_reviewed", CHAIRS, {"decision": "agree"})
    plan = engine.fire(pid, "approve_revision", PSC)
    assert (plan.state, plan.data["plan_version"], plan.data["planned_count"]) == ("in_force", 2, 3)
    assert sorted(plan.data["approved_topics"]) == ["t1", "t2", "t4"]
    t4 = topic_of(engine, pid, "t4")
    assert engine.get(t4).data["plan_version"] == 2
    cancelled = engine.get(t3)
    assert (cancelled.state, cancelled.data["cancelled_in_plan_version"]) == (
        "cancelled_by_revision",
        2,
    )
    engine.fire(t4, "approve", OFFICE)
    engine.fire(t4, "carry_over", OFFICE, reason="转入下年度")
    hold_and_submit(env, t1)
    env.engine.fire(t1, "close", OFFICE)
    hold_and_submit(env, t2, kind="consultation_brief")
    engine = env.on("2024-07-10")
    engine.fire(
        t2,
        "record_instruction",
        OFFICE,
        {"leader": "市委书记", "text": "请市教育局研究落实", "date": "2024-07-08"},
    )
    engine.fire(t2, "transfer", PARTY_OFFICE, {"departments": ["education"]})
    engine.fire(
        t2,
        "progress_report",
        who("edu", "department", unit="education"),
        {"progress": "新建学校两所"},
    )
    engine.fire(t2, "feed_back", OFFICE, {"result": "已向委员反馈"})
    engine.fire(t2, "close", OFFICE)
    engine = env.on("2024-12-27")
    plan = engine.fire(pid, "close_year", OFFICE, {"summary": "全年完成议题2个"})
    assert plan.state == "year_closed" and plan.final
    assert (
        plan.data["completed_count"],
        plan.data["cancelled_count"],
        plan.data["carried_over_count"],
    ) == (2, 1, 1)
    assert {engine.get(t).state for t in (t1, t2, t3, t4)} == {
        "closed",
        "cancelled_by_revision",
        "carried_over",
    }
    assert engine.verify() == []


# -- consultation_topic ---------------------------------------------------------------------


def approved_topic(env: Env, title: str = "缓解“出行难、停车难”与智慧交通建设") -> str:
    engine = env.on("2024-02-01")
    tid = engine.start("consultation_topic", {"title": title, "reason": "群众关心"}, MEMBER).id
    engine.fire(tid, "include", OFFICE, {"form": "bimonthly_forum", "category": "society"})
    engine.fire(
        tid,
        "approve",
        PSC,
        {
            "lead_leader": "张副主席",
            "responsible_department": "市交通运输局",
            "responsible_person": "赵处长",
            "due_date": "2024-10-31",
        },
    )
    return tid


def test_standalone_topic_runs_to_closed_through_instruction_and_feedback(env: Env) -> None:
    """A suggested topic is included, approved, held, instructed, implemented and closed."""
    tid = approved_topic(env)
    hold_and_submit(env, tid, kind="consultation_brief")
    engine = env.on("2024-07-01")
    engine.fire(
        tid,
        "record_instruction",
        OFFICE,
        {"leader": "市长", "text": "请交通局牵头落实", "date": "2024-06-28"},
    )
    engine.fire(tid, "transfer", GOV_OFFICE, {"departments": ["transport", "traffic_police"]})
    with pytest.raises(TransitionNotAllowed) as early:
        engine.fire(tid, "feed_back", OFFICE, {"result": "反馈"})
    assert "进展报告" in early.value.message
    with pytest.raises(Forbidden) as outsider:
        engine.fire(
            tid, "progress_report", who("hs", "department", unit="housing"), {"progress": "x"}
        )
    assert "transport" in outsider.value.message
    transport = who("tr", "department", unit="transport")
    engine.fire(tid, "progress_report", transport, {"progress": "新增停车泊位三千个"})
    engine.fire(tid, "progress_report", transport, {"progress": "智慧停车平台上线"})
    engine.fire(tid, "feed_back", OFFICE, {"result": "落实情况已通报委员"})
    topic = engine.fire(tid, "close", OFFICE)
    assert topic.state == "closed" and topic.data["progress"] == [
        "新增停车泊位三千个",
        "智慧停车平台上线",
    ]
    assert topic.data["held_on"] == "2024-06-20" and topic.data["instruction_leader"] == "市长"
    assert [h.trigger for h in engine.history(tid)].count("progress_report") == 2
    assert engine.verify() == []


def test_notice_ten_working_days_before_the_meeting_goes_out_with_a_warning(env: Env) -> None:
    """The meeting notice is due 15 working days before the meeting; a later one still goes out,
    its history row recording the warning with the working days left."""
    tid = approved_topic(env)
    engine = env.on("2024-05-20")
    engine.fire(tid, "start_preparation", COMMITTEE, {"meeting_date": "2024-06-20"})
    engine = env.on("2024-06-05")  # 10 working days before 2024-06-20 (端午 on 06-10)
    topic = engine.fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    assert topic.data["notice_sent_on"] == "2024-06-05"
    [warning] = engine.history(tid)[-1].warnings or []
    assert warning["code"] == "notice_late"
    assert "15 working days" in warning["message"] and "只有10个工作日" in warning["message"]
    engine.fire(tid, "send_materials", OFFICE, {"materials": ["材料"]})  # 10 WD is enough for these
    assert engine.history(tid)[-1].warnings is None
    assert engine.verify() == []


def test_minutes_later_than_seven_working_days_after_the_meeting_carry_a_warning(
    env: Env,
) -> None:
    """Minutes are due within 7 working days of the meeting; later ones are submitted with a
    warning naming the last day."""
    tid = approved_topic(env)
    engine = env.on("2024-05-20")
    engine.fire(tid, "start_preparation", COMMITTEE, {"meeting_date": "2024-06-20"})
    env.on("2024-05-27").fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    env.on("2024-06-05").fire(tid, "send_materials", OFFICE, {"materials": ["材料"]})
    engine = env.on("2024-06-20")
    engine.fire(tid, "hold_meeting", CHAIRS, {"attendance": 30})
    engine.fire(tid, "draft_outcome", COMMITTEE, {"kind": "minutes", "text": "纪要"})
    engine = env.on("2024-07-02")
    topic = engine.fire(tid, "submit_outcome", OFFICE, {"recipients": ["participants"]})
    assert topic.state == "outcome_submitted"
    [warning] = engine.history(tid)[-1].warnings or []
    assert warning["code"] == "minutes_late"
    assert "7 working days" in warning["message"] and "2024-07-01" in warning["message"]


def test_formal_recommendation_needs_the_adopting_body(env: Env) -> None:
    """A 建议案 must be adopted by the plenary, the standing committee or the chairpersons."""
    tid = approved_topic(env)
    engine = env.on("2024-05-20")
    engine.fire(tid, "start_preparation", COMMITTEE, {"meeting_date": "2024-06-20"})
    env.on("2024-05-27").fire(tid, "send_notice", OFFICE, {"invitees": ["委员"]})
    env.on("2024-06-05").fire(tid, "send_materials", OFFICE, {"materials": ["材料"]})
    engine = env.on("2024-06-20")
    engine.fire(tid, "hold_meeting", CHAIRS, {"attendance": 30})
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(
            tid, "draft_outcome", COMMITTEE, {"kind": "formal_recommendation", "text": "建议案"}
        )
    assert "建议案" in err.value.message
    topic = engine.fire(
        tid,
        "draft_outcome",
        COMMITTEE,
        {"kind": "formal_recommendation", "text": "建议案", "adopted_by": "standing_committee"},
    )
    assert (topic.state, topic.data["adopted_by"]) == ("outcome_drafted", "standing_committee")
    engine.fire(tid, "submit_outcome", OFFICE, {"recipients": ["party_committee"]})
    assert engine.fire(tid, "close", OFFICE).state == "closed"
    assert engine.verify() == []


def test_suggestions_end_merged_screened_out_or_rejected(env: Env) -> None:
    """Suggestions end merged into a survivor, screened out, or rejected at approval."""
    engine = env.engine
    survivor, dup, weak, rejected = (
        engine.start("consultation_topic", {"title": t}, who).id
        for t, who in (
            ("养老服务业发展", MEMBER),
            ("破解“养老难”", PUBLIC),
            ("个人诉求", PUBLIC),
            ("校园周边食品安全整治", COMMITTEE),
        )
    )
    assert (
        engine.fire(dup, "merge_into", OFFICE, {"survivor_id": survivor}).data["merged_into"]
        == survivor
    )
    assert engine.fire(weak, "screen_out", OFFICE, reason="不属协商范围").state == "screened_out"
    engine.fire(
        rejected, "include", OFFICE, {"form": "counterpart_consultation", "category": "society"}
    )
    with pytest.raises(InvalidPayload):
        engine.fire(rejected, "reject_at_approval", PSC)
    engine.fire(rejected, "reject_at_approval", PSC, reason="已列入政府专项")
    assert [engine.get(i).state for i in (dup, weak, rejected)] == [
        "merged",
        "screened_out",
        "rejected_at_approval",
    ]
    assert engine.verify() == []


def test_standalone_suggestion_cannot_skip_the_draft(env: Env) -> None:
    """Only a topic started by an approved plan is approved straight from `suggested`."""
    engine = env.engine
    tid = engine.start(
        "consultation_topic",
        {
            "title": "低空经济发展",
            "form": "thematic_consultation",
            "lead_leader": "张",
            "responsible_department": "发改委",
            "responsible_person": "赵",
            "due_date": "2024-09-30",
        },
        MEMBER,
    ).id
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(tid, "approve", PSC)
    assert "年度协商计划" in err.value.message
    assert engine.get(tid).state == "suggested"


# -- opinion_report ---------------------------------------------------------------------------

OPINION_OFFICE = who("info-centre", "opinion_office")
APPROVER = who("deputy-sg", "opinion_approver")
SIGNER = who("sg", "opinion_signer")
LIAISON = who("liaison-7", "info_liaison")


def submitted_report(
    env: Env, body: str = "城区共享单车乱停乱放，影响通行。建议划定停放区。"
) -> str:
    engine = env.on("2024-03-04")
    rid = engine.start(
        "opinion_report",
        {
            "title": "共享单车停放",
            "body": body,
            "reporter": LIAISON.id,
            "reporter_kind": "info_liaison",
        },
        LIAISON,
    ).id
    engine.fire(rid, "submit", LIAISON)
    return rid


def dispatched_report(env: Env) -> str:
    rid = submitted_report(env)
    engine = env.on("2024-03-05")
    engine.fire(rid, "adopt", OPINION_OFFICE, {"edited_body": "编辑后的正文"})
    engine.fire(rid, "approve", APPROVER)
    engine.fire(rid, "sign_off", SIGNER, {"issue_no": "2024-07"})
    engine.fire(rid, "dispatch", OPINION_OFFICE, {"recipients": ["party_committee", "government"]})
    return rid


def test_report_over_1500_characters_is_refused_at_submit(env: Env) -> None:
    """The body of an opinion report is at most 1500 characters (not bytes); the limit is named."""
    engine = env.engine
    rid = engine.start(
        "opinion_report", {"title": "长文", "body": "字" * 1501, "reporter": "m1"}, MEMBER
    ).id
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(rid, "submit", MEMBER)
    assert "1500" in err.value.message and engine.get(rid).state == "draft"
    engine.fire(rid, "save", MEMBER, {"body": "字" * 1500})
    assert engine.fire(rid, "submit", MEMBER).state == "submitted"


def test_declined_report_ends_not_adopted(env: Env) -> None:
    """The opinion office declines a report with a reason; it ends not adopted."""
    rid = submitted_report(env)
    report = env.engine.fire(rid, "decline", OPINION_OFFICE, reason="已有同类信息")
    assert (report.state, report.final) == ("not_adopted", True)
    assert env.engine.verify() == []


def test_instructed_report_is_handled_and_fed_back(env: Env) -> None:
    """Instruction, transfer, a refused-then-granted return, handling and feedback close it."""
    rid = dispatched_report(env)
    engine = env.on("2024-03-20")
    engine.fire(
        rid, "record_instruction", OPINION_OFFICE, {"leader": "市长", "text": "请城管局办理"}
    )
    engine.fire(rid, "transfer", GOV_OFFICE, {"department": "transport"})
    transport = who("tr", "department", unit="transport")
    urban = who("um", "department", unit="urban_management")
    with pytest.raises(Forbidden) as err:
        engine.fire(rid, "report_handling", urban, {"result": "已办"})
    assert "transport" in err.value.message
    engine.fire(rid, "request_return", transport, reason="属城管职责")
    engine.fire(rid, "approve_return", GOV_OFFICE)
    engine.fire(rid, "transfer", GOV_OFFICE, {"department": "urban_management"})
    engine.fire(rid, "report_handling", urban, {"result": "划定停放区1200处"})
    report = engine.fire(rid, "feed_back", OPINION_OFFICE, {"feedback": "已反馈信息员"})
    assert report.state == "closed" and report.data["transfers"] == 2
    assert report.data["instructed"] is True and report.data["department"] == "urban_management"
    assert engine.verify() == []


def test_dispatched_report_without_instruction_is_closed_by_the_timer(env: Env) -> None:
    """A dispatched report with no instruction within 30 days is closed by the system."""
    rid = dispatched_report(env)
    engine = env.on("2024-03-20")
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(rid, "close_without_instruction", OPINION_OFFICE)
    assert "30天" in err.value.message  # a Chinese message says its durations in Chinese
    assert engine.tick(at("2024-04-03")).fired == 0
    engine.tick(at("2024-04-05"))
    report = engine.get(rid)
    assert report.state == "closed" and report.data["instructed"] is False
    assert engine.history(rid)[-1].actor["id"] == "system"
    assert engine.verify() == []


# -- democratic_appraisal ---------------------------------------------------------------------

STANDING = who("standing", "standing_committee")
POLICE = who("police", "appraised_unit", unit="traffic_police")
BALLOTS = {
    "issued": 40,
    "returned": 40,
    "satisfied": 31,
    "unsatisfied": 4,
    "unknown": 3,
    "blank": 2,
}


def appraisal_in_investigation(env: Env) -> str:
    engine = env.on("2024-02-20")
    aid = engine.start(
        "democratic_appraisal",
        {"year": 2024, "target": "市公安局交警支队", "target_unit": "traffic_police"},
        CHAIRS,
    ).id
    engine.fire(aid, "request_consent", CHAIRS)
    engine.fire(aid, "consent", PSC)
    engine.fire(
        aid, "adopt_work_plan", STANDING, {"work_plan": "宣传动员、调研测评、集中评议、整改总结"}
    )
    engine.fire(aid, "record_findings", COMMITTEE, {"finding": "群众测评满意度82%"})
    return aid


def test_vote_without_a_quorum_is_refused(env: Env) -> None:
    """The vote opens only with more than half of the members present; the counts are named."""
    aid = appraisal_in_investigation(env)
    engine = env.on("2024-05-10")
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(aid, "open_vote", STANDING, {"members_total": 80, "present": 40})
    assert "应到80人" in err.value.message and "实到40人" in err.value.message
    assert engine.get(aid).state == "investigating"
    assert (
        engine.fire(aid, "open_vote", STANDING, {"members_total": 80, "present": 41}).state
        == "voting"
    )


def test_more_ballots_returned_than_issued_is_refused(env: Env) -> None:
    """Ballots returned beyond those issued void the count; the choices must add up."""
    aid = appraisal_in_investigation(env)
    engine = env.on("2024-05-10")
    engine.fire(aid, "open_vote", STANDING, {"members_total": 80, "present": 60})
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(aid, "record_ballots", STANDING, {**BALLOTS, "returned": 41, "satisfied": 32})
    assert "收回41张" in err.value.message and "发出40张" in err.value.message
    with pytest.raises(TransitionNotAllowed) as sums:
        engine.fire(aid, "record_ballots", STANDING, {**BALLOTS, "blank": 0})
    assert "（38）" in sums.value.message
    with pytest.raises(TransitionNotAllowed):
        engine.fire(aid, "issue_feedback", STANDING, {"appraisal_report": "报告"})
    assert engine.get(aid).data.get("ballots_returned") is None


def test_appraisal_closes_after_a_follow_up_round(env: Env) -> None:
    """Vote, feedback, rectification, one unsatisfied follow-up, a second rectification, close."""
    aid = appraisal_in_investigation(env)
    engine = env.on("2024-05-10")
    engine.fire(aid, "open_vote", STANDING, {"members_total": 80, "present": 60})
    voted = engine.fire(aid, "record_ballots", STANDING, BALLOTS)
    assert voted.data["satisfaction_rate"] == pytest.approx(31 / 40)
    engine.fire(aid, "issue_feedback", STANDING, {"appraisal_report": "评议意见：停车秩序待改进"})
    engine = env.on("2024-05-20")
    engine.fire(aid, "submit_rectification_plan", POLICE, {"rectification_plan": "整改方案"})
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(aid, "accept_rectification", STANDING)
    assert "整改情况报告" in err.value.message
    engine.fire(aid, "report_rectification", POLICE, {"report": "第一轮整改报告"})
    engine.fire(aid, "accept_rectification", STANDING)
    again = engine.fire(aid, "rectify_again", STANDING, reason="回头看：仍有占道停车")
    assert (again.state, again.data["follow_up_rounds"]) == ("rectifying", 1)
    with pytest.raises(TransitionNotAllowed):
        engine.fire(aid, "accept_rectification", STANDING)  # this round has no report yet
    engine.fire(aid, "report_rectification", POLICE, {"report": "第二轮整改报告"})
    engine.fire(aid, "accept_rectification", STANDING)
    done = engine.fire(aid, "close", STANDING, {"conclusion": "整改到位"})
    assert done.state == "closed" and done.data["rectification_report"] == "第二轮整改报告"
    assert engine.verify() == []


def test_follow_up_rounds_stop_at_the_limit(env: Env) -> None:
    """After max_follow_up_rounds (2) the follow-up cannot send the unit back again."""
    aid = appraisal_in_investigation(env)
    engine = env.on("2024-05-10")
    engine.fire(aid, "open_vote", STANDING, {"members_total": 80, "present": 60})
    engine.fire(aid, "record_ballots", STANDING, BALLOTS)
    engine.fire(aid, "issue_feedback", STANDING, {"appraisal_report": "报告"})
    engine.fire(aid, "submit_rectification_plan", POLICE, {"rectification_plan": "方案"})
    for round_no in range(3):
        engine.fire(aid, "report_rectification", POLICE, {"report": f"第{round_no + 1}轮"})
        engine.fire(aid, "accept_rectification", STANDING)
        if round_no < 2:
            engine.fire(aid, "rectify_again", STANDING, reason="仍不满意")
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(aid, "rectify_again", STANDING, reason="仍不满意")
    assert "2轮" in err.value.message
    assert engine.get(aid).data["follow_up_rounds"] == 2


def test_appraisal_refused_by_the_party_committee_ends_rejected(env: Env) -> None:
    """Without the party committee's consent the appraisal ends rejected."""
    engine = env.engine
    aid = engine.start("democratic_appraisal", {"year": 2024, "target": "市供电局"}, CHAIRS).id
    engine.fire(aid, "request_consent", CHAIRS)
    done = engine.fire(aid, "refuse_consent", PSC, reason="今年已安排专项巡察")
    assert (done.state, done.final) == ("rejected", True)
    assert engine.verify() == []


# -- micro_consultation -----------------------------------------------------------------------

CONVENER = who("hall-3", "member_workstation")
STREET = who("street-office", "department", unit="社区居委会")


def micro_consulted(env: Env) -> str:
    engine = env.on("2024-04-08")
    mid = engine.start(
        "micro_consultation",
        {
            "title": "老旧小区加装电梯",
            "raised_by": "居民代表",
            "description": "6层无电梯，老人出行难",
            "channel": "reception",
        },
        PUBLIC,
    ).id
    engine.fire(mid, "confirm_topic", CONVENER, {"party_org_agreed": True, "community": "幸福社区"})
    engine.fire(mid, "prepare", MEMBER, {"research": "走访住户42户"})
    engine.fire(
        mid,
        "consult",
        CONVENER,
        {"participants": ["委员", "居民代表", "住建局", "物业"], "minutes": "议事记录"},
    )
    return mid


TASKS = [
    {"task": "测绘与方案", "owner": "市住建局", "due_date": "2024-05-31"},
    {"task": "住户签字同意", "owner": "社区居委会", "due_date": "2024-06-30"},
]


def test_seven_steps_end_evaluated_and_publicised(env: Env) -> None:
    """The seven steps run from collection to an evaluation published once every task is done."""
    mid = micro_consulted(env)
    engine = env.engine
    engine.fire(mid, "agree", CONVENER, {"consensus": "分批加装", "tasks": TASKS})
    engine.fire(mid, "assign_tasks", CONVENER)
    engine = env.on("2024-05-30")
    engine.fire(
        mid, "report_progress", STREET, {"task": "测绘与方案", "progress": "方案已定", "done": True}
    )
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(mid, "evaluate", CONVENER, {"evaluation": "satisfied"})
    assert "住户签字同意" in err.value.message and "测绘与方案" not in err.value.message
    engine.fire(
        mid,
        "report_progress",
        STREET,
        {"task": "住户签字同意", "progress": "全部签字", "done": True},
    )
    done = engine.fire(mid, "evaluate", CONVENER, {"evaluation": "satisfied"})
    assert (done.state, done.data["published_on"]) == ("evaluated", "2024-05-30")
    assert [h.target for h in engine.history(mid)][:8] == [
        "collected",
        "topic_confirmed",
        "prepared",
        "consulted",
        "agreed",
        "implementing",
        "implementing",
        "implementing",
    ]
    assert engine.verify() == []


def test_task_without_owner_is_refused_at_agreement(env: Env) -> None:
    """Every agreed task needs an owner and a due date; the incomplete task is named."""
    mid = micro_consulted(env)
    tasks = [TASKS[0], {"task": "资金筹措", "due_date": "2024-06-30"}]
    with pytest.raises(TransitionNotAllowed) as err:
        env.engine.fire(mid, "agree", CONVENER, {"consensus": "分批加装", "tasks": tasks})
    assert "资金筹措" in err.value.message and "测绘与方案" not in err.value.message
    assert env.engine.get(mid).state == "consulted"


def test_confirmation_needs_the_party_organisation(env: Env) -> None:
    """The convener confirms a topic only with the community party organisation's agreement."""
    engine = env.engine
    mid = engine.start("micro_consultation", {"title": "电动自行车充电设施建设"}, PUBLIC).id
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(mid, "confirm_topic", CONVENER, {"party_org_agreed": False})
    assert "党组织" in err.value.message


def test_problem_beyond_the_community_is_escalated_into_a_proposal_draft(env: Env) -> None:
    """Escalation ends the consultation and starts a proposal draft by the member, as its child."""
    mid = micro_consulted(env)
    engine = env.engine
    done = engine.fire(mid, "escalate", MEMBER, {"target": "proposal"}, reason="超出社区职权")
    (draft,) = engine.children(mid)
    assert (done.state, done.data["escalated_to"]) == ("escalated", "proposal")
    assert (draft.workflow, draft.state, draft.data["first_proposer"], draft.data["title"]) == (
        "proposal",
        "draft",
        "m1",
        "老旧小区加装电梯",
    )
    engine.fire(draft.id, "submit", MEMBER, {"category": "society"})
    assert engine.get(draft.id).state == "submitted"
    assert engine.verify() == []


def test_problem_escalated_as_an_opinion_report_or_dropped(env: Env) -> None:
    """A problem may go up as an opinion report draft; another is dropped with a reason."""
    engine = env.engine
    mid = engine.start("micro_consultation", {"title": "城区共享单车停放管理"}, MEMBER).id
    engine.fire(
        mid,
        "escalate",
        MEMBER,
        {"target": "opinion_report", "body": "建议划定停放区"},
        reason="涉及全市",
    )
    (report,) = engine.children(mid)
    assert (report.workflow, report.data["reporter"], report.data["body"]) == (
        "opinion_report",
        "m1",
        "建议划定停放区",
    )
    other = engine.start("micro_consultation", {"title": "邻里纠纷"}, PUBLIC).id
    assert engine.fire(other, "drop", CONVENER, reason="属民事纠纷，转调解").state == "dropped"
    assert engine.get(mid).state == "escalated"
    assert engine.verify() == []


# -- online_consultation ----------------------------------------------------------------------


def open_online(env: Env) -> str:
    engine = env.on("2024-03-01")
    oid = engine.start(
        "online_consultation", {"title": "低空经济发展", "channel": "app"}, OFFICE
    ).id
    opened = engine.fire(oid, "open", OFFICE)
    assert (opened.data["opened_on"], opened.data["closes_on"]) == ("2024-03-01", "2024-03-16")
    return oid


def test_comments_are_counted_and_the_timer_closes_the_window(env: Env) -> None:
    """Comments while open count participants once; the window's end closes them by timer."""
    oid = open_online(env)
    engine = env.on("2024-03-05")
    engine.fire(oid, "comment", MEMBER, {"text": "建议建设通用机场"})
    engine.fire(oid, "comment", PUBLIC, {"text": "希望开通无人机配送"})
    engine = env.on("2024-03-16", 23)
    engine.fire(oid, "comment", MEMBER, {"text": "补充：空域管理"})
    with pytest.raises(TransitionNotAllowed) as early:
        engine.fire(oid, "close_comments", OFFICE)
    assert "2024-03-16" in early.value.message
    engine = env.on("2024-03-17", 9)
    with pytest.raises(TransitionNotAllowed) as late:
        engine.fire(oid, "comment", PUBLIC, {"text": "迟到的意见"})
    assert "2024-03-16" in late.value.message
    assert engine.tick().fired == 1
    online = engine.get(oid)
    assert online.state == "closed_for_comments"
    assert (online.data["comment_count"], online.data["participant_count"]) == (3, 2)
    assert engine.history(oid)[-1].actor["id"] == "system"
    engine.fire(oid, "summarise", OFFICE, {"summary": "归纳建议2条", "suggestion_count": 2})
    engine.fire(oid, "submit", OFFICE, {"recipients": ["party_committee", "government"]})
    engine.fire(oid, "record_instruction", OFFICE, {"leader": "市长", "text": "请发改委研究"})
    engine.fire(oid, "feed_back", OFFICE, {"feedback": "已在平台公布采纳情况"})
    assert engine.fire(oid, "close", OFFICE).state == "closed"
    assert engine.verify() == []


def test_summary_cannot_claim_more_suggestions_than_comments(env: Env) -> None:
    """The summary's suggestion count is at most the number of comments received."""
    oid = open_online(env)
    engine = env.on("2024-03-05")
    engine.fire(oid, "comment", MEMBER, {"text": "建议一"})
    engine = env.on("2024-03-18")
    engine.fire(oid, "close_comments", OFFICE)
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(oid, "summarise", OFFICE, {"summary": "综述", "suggestion_count": 5})
    assert "（5）" in err.value.message and "（1）" in err.value.message
    with pytest.raises(TransitionNotAllowed):
        engine.fire(oid, "close_without_comments", OFFICE)


def test_window_without_comments_closes_without_a_summary(env: Env) -> None:
    """A window that drew no comment ends closed without a summary."""
    oid = open_online(env)
    engine = env.engine
    engine.tick(at("2024-03-17", 1))
    assert engine.fire(oid, "close_without_comments", OFFICE).state == "closed"
    assert engine.verify() == []
