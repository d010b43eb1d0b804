"""The simulated city: its year, units, subjects and the actors who play the roles."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from xieshang import Actor

CN = timezone(timedelta(hours=8))
YEAR = 2024
ORG = "demo_city_cppcc"
CATEGORIES = ["economy", "politics", "culture", "society", "ecology"]
UNITS = [
    "urban_management",
    "transport",
    "traffic_police",
    "housing",
    "natural_resources",
    "education",
    "health",
    "civil_affairs",
    "culture_tourism",
    "water",
    "ecology_env",
    "market_regulation",
    "agriculture",
    "power_supply",
    "human_resources",
    "united_front",
]
FORMS = [
    "thematic_standing_meeting",
    "thematic_consultation",
    "bimonthly_forum",
    "chair_interview",
    "inspection_consultation",
    "counterpart_consultation",
    "sector_consultation",
    "proposal_handling_consultation",
    "online_consultation",
]
TOPIC_TITLES = [
    "农村环境综合整治",
    "助推航空港经济区发展",
    "加强农村社会治理",
    "服务民营经济发展",
    "破解“上学难、上好学难”",
    "破解“住房难”",
    "破解“养老难”",
    "缓解“出行难、停车难”与智慧交通建设",
    "养老服务业发展",
    "“公交都市”建设",
    "现代高效农业示范园区建设",
    "美丽乡村与生态建设",
    "扶贫攻坚与同步小康",
    "社区容量过大亟待调整分设",
    "校园周边食品安全整治",
    "非公经济组织党建工作",
    "城区共享单车停放管理",
    "老旧小区加装电梯",
    "电动自行车充电设施建设",
    "低空经济发展",
]
SUBJECTS = [
    "停车",
    "学位",
    "养老",
    "菜市场",
    "公交线路",
    "雨污分流",
    "老旧小区",
    "托育",
    "就业",
    "文旅",
    "电梯",
    "充电桩",
]
GROUNDS = ["personal", "no_concrete_suggestion", "in_litigation", "advertising"]


def who(name: str, *roles: str, unit: str | None = None) -> Actor:
    return Actor.of(name, *roles, org=ORG, unit=unit)


OFFICE = who("cppcc-office", "cppcc_office")
PARTY_OFFICE = who("party-office", "party_office")
GOV_OFFICE = who("gov-office", "government_office")
CHAIRS = who("chairs", "chairpersons_council")
PSC = who("psc", "party_standing_committee")
STANDING = who("standing", "standing_committee")
COMMITTEE = who("proposal-committee", "proposal_committee")
SPECIAL = who("econ-committee", "special_committee")
SUPERVISION = who("supervision", "supervision_office")
OPINION_OFFICE = who("info-centre", "opinion_office")
APPROVER = who("deputy-sg", "opinion_approver")
SIGNER = who("sg", "opinion_signer")


def unit_actor(name: str) -> Actor:
    return who(f"staff-{name}", "handling_unit", unit=name)


def dept_actor(name: str) -> Actor:
    return who(f"dept-{name}", "department", unit=name)


def day(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=CN)
