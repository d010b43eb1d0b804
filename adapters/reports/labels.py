"""The Chinese labels and the fixed vocabularies the reports count by."""

from __future__ import annotations

from datetime import timedelta, timezone

CN = timezone(timedelta(hours=8))
UNCLASSIFIED = "未分类"
CLASSES = ("A", "B", "C")
CLASS_ZH = {"A": "A类（已解决或采纳）", "B": "B类（正在解决或列入计划）", "C": "C类（留作参考）"}
CATEGORY_ZH = {
    "economy": "经济",
    "politics": "政治",
    "culture": "文化",
    "society": "社会",
    "ecology": "生态",
}
KIND_ZH = {"individual": "个人", "joint": "联名", "collective": "集体"}
ONLINE = "online"
CHANNEL_ZH = {"online": "网上提交", "paper": "纸质提交", "session": "大会现场提交"}
GROUND_ZH = {
    "state_secret": "涉及国家秘密",
    "prohibited": "违反法律法规",
    "party_internal": "党内事务",
    "party_org_internal": "党派团体内部事务",
    "in_litigation": "涉诉",
    "academic": "学术问题",
    "personal": "个人事务",
    "advertising": "宣传广告",
    "named_accusation": "指名控告",
    "no_concrete_suggestion": "无具体建议",
}
UNIT_ZH = {
    "urban_management": "市城管局",
    "transport": "市交通运输局",
    "traffic_police": "市公安局交警支队",
    "housing": "市住建局",
    "natural_resources": "市自然资源局",
    "education": "市教育局",
    "health": "市卫健委",
    "civil_affairs": "市民政局",
    "culture_tourism": "市文旅局",
    "water": "市水务局",
    "ecology_env": "市生态环境局",
    "market_regulation": "市市场监管局",
    "agriculture": "市农业农村局",
    "power_supply": "市供电局",
    "human_resources": "市人社局",
    "united_front": "市委统战部",
}
FORM_ZH = {
    "thematic_standing_meeting": "专题议政性常委会议",
    "thematic_consultation": "专题协商会",
    "bimonthly_forum": "双月协商座谈会",
    "chair_interview": "主席约谈会",
    "inspection_consultation": "视察协商",
    "counterpart_consultation": "对口协商",
    "sector_consultation": "界别协商",
    "proposal_handling_consultation": "提案办理协商",
    "online_consultation": "网络协商",
}
SATISFACTION = ("satisfied", "basically_satisfied", "unsatisfied")
SATISFACTION_ZH = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}
REPLIED_OR_LATER = {"replied", "rehandling", "awaiting_meeting", "closed"}
UNSTATED = "未注明"
