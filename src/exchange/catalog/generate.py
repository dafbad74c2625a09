"""The deterministic catalog generator: core topics expanded to the real platform's shape.

Profiles (:data:`PROFILES`):

``core``
    Only the hand-written core topics of ``catalog/topics/*.yaml``.
``guangzhou-2017``
    The shared catalog's 2nd edition: exactly **1,999** topics from **52** municipal-level
    departments, **71** basic, **699** departmental and **1,229** special-project (专项)
    topics, core topics included. The 52 providers are every unit of kind ``municipal`` (51 in
    ``catalog/units.yaml``) plus the tax bureau ``swj``: 国家税务总局广州市税务局 is a vertical
    body by status (kind ``vertical``), but it published its catalog with the municipal
    departments and is a key source, so :data:`CATALOG_2017_VERTICALS` admits it.
``platform-2020``
    The platform in mid-2020: exactly **3,722** topics provided across all **151** units.
    It is the ``guangzhou-2017`` catalog for the same seed, unchanged, plus 1,723 topics
    registered since (:data:`ADDITIONS_2020`): 578 more from the 52 catalog departments (20
    basic, 90 departmental, 468 special-project),
    860 from the district governments and bureaus, 80 from the other vertical bodies, 75
    from courts, procuratorate and public institutions, 36 from utilities, 70 from the
    provincial platform (data returned from national and provincial systems) and 24 from
    banks and insurers (account and policy checks for household economic-status
    verification). Every unit provides at least one topic.

Generated topics are built from per-department vocabularies (:data:`VOCABULARY`: the things a
department administers and what it does to them: 许可, 备案, 登记, 处罚, 检查, 补贴, 统计 …)
so a name reads like ``道路运输经营许可信息`` or ``最低生活保障补贴发放信息（社会救助）``.
One datum, one source holds over every profile: a generated item carries no element, an
element of its own topic (``<provider>.<slug part>.<field>``, ``is_source: true``), or
re-shares a core topic's identifier element (``person.id_number``,
``enterprise.credit_code`` …) with ``is_source: false``.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from exchange.catalog.content import find_source_conflicts
from exchange.catalog.schemas import CatalogGroup, TopicCreate
from exchange.members.schemas import DepartmentCreate, DepartmentKind

__all__ = [
    "ADDITIONS_2020",
    "CATALOG_2017_VERTICALS",
    "PROFILES",
    "PROJECTS",
    "TARGETS_2017",
    "VOCABULARY",
    "generate_catalog",
]

PROFILES = frozenset({"core", "guangzhou-2017", "platform-2020"})

TARGETS_2017: dict[CatalogGroup, int] = {
    CatalogGroup.basic: 71,
    CatalogGroup.departmental: 699,
    CatalogGroup.special: 1229,
}
PROVIDERS_2017 = 52
TOTAL_2020 = 3722

# Vertical bodies that were among the 2017 catalog's 52 providing departments.
CATALOG_2017_VERTICALS = frozenset({"swj"})

# Topics registered between the 2017 catalog and mid-2020, by who provides them and group.
# The "catalog" row is the 52 providers of guangzhou-2017; the others are unit kinds.
ADDITIONS_2020: dict[str, dict[CatalogGroup, int]] = {
    "catalog": {CatalogGroup.basic: 20, CatalogGroup.departmental: 90, CatalogGroup.special: 468},
    "district": {CatalogGroup.departmental: 470, CatalogGroup.special: 390},
    "vertical": {CatalogGroup.basic: 5, CatalogGroup.departmental: 45, CatalogGroup.special: 30},
    "institution": {CatalogGroup.departmental: 40, CatalogGroup.special: 35},
    "utility": {CatalogGroup.departmental: 20, CatalogGroup.special: 16},
    "provincial": {
        CatalogGroup.basic: 20,
        CatalogGroup.departmental: 25,
        CatalogGroup.special: 25,
    },
    "financial": {CatalogGroup.departmental: 8, CatalogGroup.special: 16},
}

# fmt: off
# Per-department vocabularies: "对象|动作|标记". 动作 letters are the _ACTIONS keys; 标记: p = about
# a person, e = about an entity (else about a thing), 1/2/3 = a basic-information domain
# (population / legal entities / natural resources and geography).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "bgt": ("政府常务会议议定事项|IJ|", "重点督办事项|IJT|", "政府规章|IF|", "行政规范性文件|IF|",
            "政府信息公开申请|IT|p", "人大代表建议和政协提案办理|IT|"),
    "fgw": ("固定资产投资项目|AFT|e", "企业投资项目核准|AI|e", "政府投资项目|AIT|e",
            "价格监测|IT|", "重点建设项目|IDJ|e", "粮食储备库存|IT|e", "社会信用红黑名单|ID|e",
            "信用修复|IA|e", "电力需求侧管理|IT|e", "节能审查|AI|e", "价格违法行为|XQ|e"),
    "jyj": ("中小学学籍|IRT|p", "学校基本|IDT|e", "民办学校办学许可|PJX|e", "教师资格|CRI|p",
            "义务教育招生入学|IT|p", "学生资助|SIT|p", "校外培训机构|PDJX|e", "中考成绩|I|p",
            "普通高中学业水平考试|I|p", "幼儿园|DPS|e"),
    "kjj": ("高新技术企业认定|IDC|e", "科技型中小企业入库|ID|e", "科技计划项目|AIS|e",
            "科技企业孵化器|DS|e", "研发费用后补助|SI|e", "技术合同登记|RT|e", "新型研发机构|DIS|e",
            "科技人才|I|p"),
    "gxj": ("工业企业|DT|e", "规模以上工业企业经济运行|T|e", "技术改造项目|AS|e",
            "专精特新中小企业|DI|e", "无线电台站设置|PJ|e", "软件和信息技术服务企业|DT|e",
            "工业和信息化专项资金|SA|e", "企业技术中心认定|IC|e", "民用爆炸物品|PJX|e"),
    "gaj": ("户籍人口|IRT|p1", "居民身份证|IC|p1", "居住证|CI|p1", "流动人口居住登记|RT|p1",
            "机动车|RIX|e", "机动车驾驶证|CIX|p", "道路交通违法|IXT|p", "道路交通事故|IT|",
            "印章刻制|FPI|e", "旅馆业治安管理|PJD|e", "境外人员住宿登记|RT|p",
            "出入境证件|CI|p", "犯罪记录查询|I|p", "保安服务|PD|e", "民用枪支|PI|e",
            "大型群众性活动安全|PA|e", "无犯罪记录证明|CI|p"),
    "mzj": ("婚姻登记|RIT|p1", "最低生活保障|ISA|p", "特困人员救助供养|ISA|p",
            "居民家庭经济状况核对|IA|p", "社会组织|RDX|e2", "养老机构|FDJS|e",
            "殡葬服务|IFR|p", "地名|RI|3", "临时救助|ISA|p", "残疾人两项补贴|SI|p",
            "慈善组织|RDI|e", "收养登记|RI|p", "社区居民委员会|DI|e"),
    "sfj": ("律师执业|CIX|p", "律师事务所|PDX|e", "公证员执业|CI|p", "司法鉴定机构|PD|e",
            "人民调解|IT|p", "法律援助|AIT|p", "社区矫正对象|IR|p", "行政复议案件|IT|",
            "行政执法人员|CI|p", "基层法律服务工作者|CI|p"),
    "czj": ("财政预算执行|IT|", "政府采购合同|IF|e", "政府采购供应商|DX|e", "非税收入缴款|IT|e",
            "行政事业单位资产|IT|e", "会计人员|CI|p", "代理记账机构|PDX|e", "财政专项资金|SAT|e",
            "财政票据|IT|e"),
    "rsj": ("社会保险参保|IRT|p1", "社会保险缴费|IT|p", "社会保障卡|CI|p1",
            "就业失业登记|RIT|p", "企业用工备案|FIT|e", "专业技术人员职业资格|CI|p",
            "技能人才评价|CIT|p", "人力资源服务机构|PDX|e", "劳动保障监察|JXQ|e",
            "劳动人事争议仲裁|IT|p", "就业创业补贴|SA|p", "养老保险待遇|IST|p",
            "工伤认定|AI|p", "失业保险金|SI|p", "技工学校|PD|e"),
    "ghzyj": ("不动产登记|RIT|p3", "国有建设用地使用权出让|IA|e3", "建设工程规划许可|PAI|e",
              "建设用地规划许可|PA|e", "土地利用现状|IT|3", "基础测绘成果|IF|3",
              "矿产资源|PIJ|e3", "违法用地|XJ|e", "规划条件核实|AI|e", "地质灾害隐患点|DJ|3",
              "城市规划管理单元|I|3", "测绘资质|CDX|e"),
    "sthjj": ("排污许可证|PCIX|e", "建设项目环境影响评价审批|AI|e", "环境空气质量监测|IT|",
              "重点排污单位|DJX|e", "固体废物转移联单|FIT|e", "危险废物经营许可|PJ|e",
              "辐射安全许可|PJ|e", "环境信访投诉|QI|", "水环境质量监测|IT|",
              "机动车排放检验机构|DJ|e", "环境违法行为|XJ|e"),
    "zfcxjsj": ("商品房预售许可|PIX|e", "商品房网签备案|FIT|p", "建筑工程施工许可|PAI|e",
                "保障性住房申请|AIS|p", "房屋租赁登记备案|FIT|p", "建筑业企业资质|CDX|e",
                "房地产开发企业资质|CDX|e", "建设工程竣工验收备案|FI|e", "物业服务企业|DJ|e",
                "住房租赁补贴|SA|p", "注册建造师|CI|p", "建筑施工安全生产|JX|e",
                "存量房交易资金监管|IF|p", "公共租赁住房|AID|p"),
    "jtj": ("道路运输经营许可|PIX|e", "出租汽车驾驶员从业资格|CIX|p",
            "网络预约出租汽车运输证|PCI|e",
            "机动车维修经营备案|FDJ|e", "道路客运班线经营|PI|e", "经营性停车场备案|FDI|e",
            "公交线路|IT|", "中小客车指标配置|AIT|p", "交通运输行政执法|XJ|e",
            "驾驶员培训机构|FDJ|e", "城市轨道交通运营|IT|", "港口经营许可|PI|e",
            "道路运输从业人员|CIX|p", "交通建设工程|AIJ|e"),
    "slj": ("取水许可|PIJ|e", "排水许可|PIX|e", "河道管理范围内建设项目|AI|e", "河湖长制巡河|IT|",
            "水文监测|IT|3", "水库山塘|DJ|3", "水土保持方案|AI|e", "城市供水水质|IT|",
            "三防应急|IT|", "水务违法行为|XJ|e"),
    "nyncj": ("农村土地承包经营权|RI|p3", "农业生产经营主体|DS|e", "种子生产经营许可|PJ|e",
              "兽药经营许可|PJX|e", "动物防疫条件合格证|CJ|e", "农产品质量安全检测|JI|e",
              "渔业船舶|RCI|e", "耕地地力保护补贴|SI|p", "农村宅基地|RA|p3",
              "农业机械|RIS|p", "生猪屠宰许可|PJ|e"),
    "sw": ("对外贸易经营者备案|FD|e", "外商投资企业|FIT|e", "单用途商业预付卡发卡企业|FDJ|e",
           "拍卖企业|PD|e", "二手车交易市场|FD|e", "成品油零售经营|PJ|e",
           "商贸流通企业经营|T|e", "报废机动车回收拆解|PJ|e", "商务专项资金|SA|e"),
    "wglj": ("营业性演出许可|PIX|e", "网络文化经营许可|PJX|e", "娱乐场所经营许可|PJX|e",
             "旅行社业务经营许可|PDX|e", "A级旅游景区|DI|e", "导游|CI|p",
             "广播电视节目制作经营许可|PI|e", "文物保护单位|DI|3", "公共图书馆读者|RT|p",
             "星级饭店|DJ|e", "文化市场综合执法|XJ|e"),
    "wjw": ("出生医学证明|CIT|p1", "居民死亡医学证明|CIT|p1", "医疗机构执业登记|RDX|e",
            "医师执业注册|RCI|p", "护士执业注册|RCI|p", "预防接种|IT|p",
            "计划生育家庭奖励扶助|SI|p",
            "生育登记|RI|p", "公共场所卫生许可|PJX|e", "职业健康检查|IT|p",
            "居民电子健康档案|I|p", "院前急救|IT|", "卫生监督检查|JX|e", "医疗机构诊疗服务|T|e"),
    "tyjrswj": ("退役军人|RI|p", "退役军人优待证|CI|p", "优抚对象抚恤补助|SI|p",
                "退役士兵安置|AI|p", "烈士纪念设施|DI|"),
    "yjglj": ("危险化学品企业|DJP|e", "安全生产许可证|PCJ|e", "生产安全事故|IT|e",
              "安全生产行政执法|XJ|e", "应急避难场所|DI|3", "应急救援队伍|DI|e",
              "自然灾害灾情|IT|", "特种作业操作证|CI|p", "烟花爆竹经营许可|PJ|e",
              "安全生产标准化企业|DC|e"),
    "sjj": ("审计项目计划|IT|", "审计发现问题整改|IJ|e", "经济责任审计|IA|", "审计结果公告|IF|e"),
    "wb": ("因公出国（境）审批|AI|p", "外国人来华邀请|AI|p", "APEC商务旅行卡|CA|p",
           "外国常驻新闻机构|DI|e", "友好城市交流|IT|"),
    "gzw": ("市属国有企业|DIT|e", "国有资产产权登记|RI|e", "国有企业经营业绩|T|e",
            "国有资本经营预算|IA|e", "企业负责人薪酬|I|p"),
    "scjgj": ("商事主体|IRT|e2", "商事主体股东|I|e2", "商事主体年报|YI|e2",
              "经营异常名录|DI|e", "严重违法失信企业名单|DI|e", "个体工商户|RI|p2",
              "企业注销|RI|e", "食品经营许可|PCJX|e", "食品生产许可|PCJX|e",
              "药品零售企业|PDJX|e", "医疗器械经营备案|FDJ|e", "特种设备使用登记|RJX|e",
              "工业产品生产许可|PJ|e", "计量器具强制检定|JI|e", "商标专利侵权|XQ|e",
              "消费投诉举报|QT|", "广告违法|XJ|e", "农民专业合作社|RI|e2", "动产抵押登记|RI|e",
              "股权出质登记|RI|e", "知识产权质押|RI|e"),
    "tyj": ("体育场馆|DI|3", "经营高危险性体育项目许可|PJ|e", "社会体育指导员|CI|p",
            "体育社会组织|DI|e", "国民体质监测|IT|p"),
    "tjj": ("国民经济核算|T|", "人口抽样调查|T|", "规模以上企业统计名录|DT|e",
            "统计调查项目|AF|", "统计违法行为|XJ|e", "居民消费价格|T|", "经济普查|IT|e"),
    "ybj": ("基本医疗保险参保|IRT|p1", "医保定点医药机构|DJX|e", "医疗救助|SAI|p",
            "医疗保险费用结算|IT|p", "门诊特定病种|AI|p", "医保药品目录|DI|",
            "长期护理保险|AIS|p", "生育保险待遇|SI|p", "医保基金监管|JX|e",
            "异地就医备案|FI|p"),
    "cgzfj": ("城市管理行政执法|XJ|e", "户外广告设置|PAX|e", "生活垃圾分类|IT|",
              "余泥渣土排放|PJ|e", "燃气经营许可|PJX|e", "环卫作业|IT|", "违法建设查处|XJ|e",
              "占用城市道路|PA|e", "城市照明设施|DI|3", "市容环境卫生责任区|I|e"),
    "lyylj": ("林木采伐许可|PI|e", "古树名木|DI|3", "城市公园|DI|3", "林地征占用审核|AI|e",
              "陆生野生动物|PJX|e", "森林防火|IT|", "绿化工程|AI|e", "自然保护地|I|3"),
    "jrj": ("小额贷款公司|DJ|e", "融资担保公司|PDJ|e", "融资租赁公司|DJ|e",
            "非法集资风险监测|IT|e", "地方金融组织|DJX|e", "上市挂牌企业|DI|e",
            "金融发展专项资金|SA|e"),
    "zsj": ("电子证照|ICT|", "政务服务事项|IDT|", "政务服务办件|IT|p", "12345热线工单|QIT|p",
            "好差评|IT|", "政务服务中心窗口|DI|", "信息资源目录|IF|", "数据共享申请|AIT|e",
            "数据质量问题反馈|IT|", "首席数据官|I|p"),
    "gwj": ("港口经营|PIJ|e", "港口危险货物作业|PJ|e", "港口吞吐量|T|", "船舶引航|IT|",
            "港口设施保安|CJ|e", "水路运输|PIJ|e"),
    "xzb": ("对口帮扶项目|IAT|", "东西部协作资金|SI|", "对口支援干部人才|I|p",
            "消费帮扶产品|DI|e"),
    "mzzjj": ("宗教活动场所|RDI|e", "宗教教职人员|FI|p", "少数民族流动人口服务|IT|p",
              "民族团结进步示范单位|DI|e", "宗教团体|RI|e"),
    "xfj": ("信访事项|QIT|p", "网上信访|QI|p", "信访督查督办|JI|", "领导干部接访|IT|"),
    "kab": ("口岸通关|IT|", "口岸运行|IT|", "国际贸易单一窗口|IT|e", "口岸开放|AI|"),
    "jgswglj": ("公务用车|RI|", "党政机关办公用房|RI|", "公共机构节能|IT|e",
                "公务接待|IT|", "机关事业单位食堂|D|e"),
    "rfb": ("人防工程|FDJ|3", "人防工程易地建设费|IS|e", "人防警报设施|DI|3",
            "人防工程使用证|CI|e"),
    "lsj": ("来穗人员居住登记|RIT|p1", "来穗人员积分制服务管理|AIT|p",
            "出租屋|RDJ|3", "来穗人员随迁子女积分入学|AI|p", "出租屋治安隐患|JX|"),
    "yjs": ("政策研究课题|AI|", "决策咨询专家|DI|p", "政府工作报告任务分解|IJ|"),
    "daj": ("档案馆馆藏档案|IT|", "婚姻档案|I|p", "开放档案目录|ID|", "档案查询利用|IT|p"),
    "gjj": ("住房公积金缴存|IRT|p1", "住房公积金提取|AIT|p", "住房公积金贷款|AIT|p",
            "单位缴存登记|RI|e", "住房公积金个人账户|I|p", "住房公积金贷款逾期|IT|p",
            "租房提取住房公积金|AI|p"),
    "ggzyjy": ("工程建设项目招标|IF|e", "中标结果公示|ID|e", "政府采购项目交易|IT|e",
               "土地使用权交易|IT|e3", "评标专家|DIC|p", "交易主体|RDX|e", "产权交易|IT|e"),
    "bdcdj": ("不动产权利|RIT|p3", "不动产抵押|RI|p", "不动产查封|RI|p", "预告登记|RI|p",
              "不动产权证书|CI|p", "不动产登记簿|I|3"),
    "sbjj": ("养老保险个人账户|IT|p", "社会保险待遇发放|SIT|p", "社会保险基金收支|T|",
             "参保单位缴费|IT|e", "社会保险欠费|IX|e", "失业保险基金|IT|"),
    "clgls": ("机动车注册登记|RI|e", "机动车转移登记|RI|p", "机动车检验合格标志|CIJ|e",
              "机动车抵押登记|RI|p", "机动车安全技术检验机构|DJ|e", "驾驶人考试|IT|p",
              "机动车号牌|IC|e"),
    "cl": ("残疾人证|CIR|p1", "残疾人就业|IS|p", "残疾人康复服务|ISA|p", "残疾人辅助器具适配|IS|p",
           "残疾人托养服务|DI|e"),
    "fl": ("妇女儿童维权|QIT|p", "家庭文明建设|DI|", "妇女创业就业|IS|p", "困难母亲帮扶|SI|p"),
    "gxs": ("供销合作社基层社|DI|e", "农资经营|DJ|e", "再生资源回收网点|DI|3", "农产品流通|IT|e"),
    "zfbz": ("公共租赁住房保障|AIS|p", "住房保障轮候|IT|p", "保障性住房房源|DI|3",
             "人才公寓|AI|p"),
    # Vertical bodies, institutions, utilities, financial members, the provincial platform.
    "swj": ("税务登记|RIT|e2", "纳税信用等级|ID|e", "欠税公告|IF|e", "纳税申报|IT|e",
            "增值税发票|IT|e", "个人所得税纳税记录|CIT|p", "重大税收违法失信案件|DIX|e",
            "契税缴纳|IT|p", "社会保险费征收|IT|e", "出口退（免）税|AIT|e",
            "税收优惠备案|FI|e", "房产税城镇土地使用税|IT|e"),
    "gzhg": ("进出口货物报关|IT|e", "海关注册登记企业|RDI|e", "海关企业信用等级|ID|e",
             "进出口商品检验检疫|JI|e", "海关行政处罚|XI|e", "加工贸易手册|FI|e"),
    "hphg": ("进出口货物报关|IT|e", "海关注册登记企业|RDI|e", "海关行政处罚|XI|e",
             "跨境电子商务进出口|IT|e"),
    "rmyh": ("企业基本账户开立|IF|e", "征信机构备案|FD|e", "支付机构|DJ|e", "金融统计|T|",
             "人民币跨境结算|IT|e", "反洗钱可疑交易|I|e"),
    "yzglj": ("快递业务经营许可|PDJX|e", "快递末端网点备案|FD|e", "邮政业务量|T|",
              "邮政用户申诉|QI|"),
    "ycj": ("烟草专卖零售许可|PDJX|e", "烟草专卖行政处罚|XI|e", "卷烟市场监管|JI|e"),
    "qxj": ("自动气象站观测|IT|3", "气象灾害预警信号|IF|", "天气预报|IF|",
            "防雷装置设计审核|AJ|e", "雷电灾害风险评估|I|e", "施放气球活动许可|PJ|e"),
    "bjzz": ("出入境人员边检|IT|p", "出入境交通工具边检|IT|", "口岸限定区域通行证|CI|p"),
    "dcd": ("城乡住户收支调查|T|", "农产品价格调查|T|", "规模以下工业抽样调查|T|e",
            "劳动力调查|T|"),
    "zy": ("裁判文书|IF|", "失信被执行人|DI|p", "限制高消费被执行人|DI|p", "立案|IT|",
           "财产保全|I|p", "司法拍卖|IF|", "执行案件|IT|p"),
    "jcy": ("公益诉讼案件|IT|e", "刑事案件起诉|IT|p", "行贿犯罪档案|I|p", "检察建议|IF|e"),
    "hlwfy": ("互联网案件立案|IT|", "电子诉讼送达|IT|p", "裁判文书|IF|"),
    "zscqfy": ("知识产权案件|IT|e", "裁判文书|IF|", "技术调查官|DI|p"),
    "hsfy": ("海事海商案件|IT|e", "船舶扣押拍卖|IF|e", "海事强制令|IF|e"),
    "cdc": ("传染病报告|IT|p", "预防接种单位|DI|e", "疫苗流通|IT|e", "慢性病监测|IT|p",
            "健康危害因素监测|IT|", "核酸检测|IT|p"),
    "jjzx": ("院前急救呼叫|IT|p", "急救网络医院|DI|e", "急救车辆调度|IT|"),
    "zcw": ("仲裁案件受理|IT|e", "仲裁员|DC|p", "仲裁裁决|IF|e"),
    "gzc": ("公证书|CI|p", "涉外公证|IT|p", "提存公证|IT|e"),
    "xxhzx": ("政务外网运行监测|IT|", "政务云资源使用|IT|e", "数字证书|CI|e"),
    "gdj": ("用电户|RI|e", "用电量|IT|e", "电力欠费|IT|e", "停电计划|IF|", "新装增容|AI|e",
            "充电设施|DI|3"),
    "zls": ("用水户|RI|e", "用水量|IT|e", "供水管网|I|3", "停水计划|IF|", "水费欠费|IT|e"),
    "rq": ("管道燃气用户|RI|e", "燃气用量|IT|e", "瓶装燃气供应站|DJ|e", "燃气安全检查|JI|e"),
    "gzdt": ("地铁客流|IT|", "地铁线网运营|IT|", "羊城通交易|IT|p", "地铁保护区施工|AJ|e"),
    "icbc": ("个人存款账户核查|I|p", "企业银行账户开立|IF|e", "代发工资|IT|e"),
    "abc": ("个人存款账户核查|I|p", "涉农贷款|IT|e", "企业银行账户开立|IF|e"),
    "boc": ("个人存款账户核查|I|p", "跨境汇款|IT|e", "企业银行账户开立|IF|e"),
    "ccb": ("个人存款账户核查|I|p", "住房按揭贷款|IT|p", "企业银行账户开立|IF|e"),
    "bocom": ("个人存款账户核查|I|p", "企业银行账户开立|IF|e", "信用卡透支|IT|p"),
    "gzbank": ("个人存款账户核查|I|p", "普惠小微贷款|IT|e", "社保卡金融账户|I|p"),
    "grcb": ("个人存款账户核查|I|p", "涉农贷款|IT|e", "社保卡金融账户|I|p"),
    "chinalife": ("商业保险保单核查|I|p", "大病保险理赔|IT|p", "意外伤害保险|I|p"),
    "gdzsj": ("全国人口基础信息|I|p1", "全国法人单位基础信息|I|e2", "国家部委电子证照|CI|",
              "省级政务服务事项|ID|", "全省社会保险参保|I|p1", "全省婚姻登记|I|p1",
              "全省企业信用|ID|e", "省级行政许可|PI|e", "省级行政处罚|XI|e",
              "全国学历学位|CI|p", "全国残疾人证|CI|p", "全国不动产登记|I|p3",
              "国家企业信用信息公示|I|e2", "全国出生医学证明|CI|p1", "全国死亡医学证明|CI|p1",
              "全国婚姻登记|I|p1", "全国社会组织|DI|e2", "全国事业单位法人|I|e2",
              "全国失信被执行人|DI|p", "全国机动车驾驶证|CI|p", "全国护士执业注册|CI|p",
              "全国医师执业注册|CI|p", "全国律师执业|CI|p", "全国特种设备作业人员|CI|p",
              "全国建筑施工企业资质|CDI|e", "全国导游|CI|p", "全国教师资格|CI|p",
              "全省低保救助|IS|p", "全省不动产抵押|I|p", "全省住房公积金缴存|I|p",
              "全省养老保险待遇|IS|p", "全省政务服务办件|IT|", "全省一体化在线政务服务评价|IT|",
              "全国退役军人|I|p", "全国专利|RI|e", "全国商标注册|RI|e"),
    "district": ("城市更新项目|AIT|e", "网格化服务管理事件|IT|", "出租屋综合管理|RJ|",
                 "街道社区工作站|DI|3", "三旧改造地块|I|3", "集体资产交易|IT|e",
                 "重点项目建设|IJT|e", "区属国有企业|DI|e", "农村集体经济组织|RI|e",
                 "矛盾纠纷排查|IT|p", "政府投资项目|AI|e", "基层党组织|DI|e",
                 "消防安全隐患排查|JX|e", "安全生产网格巡查|JX|e"),
}

# 专项应用: the cross-department projects special-project topics serve. A vocabulary takes part
# in the projects that name it and in every general project.
PROJECTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("居民家庭经济状况核对", ("mzj", "gaj", "clgls", "ghzyj", "bdcdj", "zfcxjsj", "rsj", "sbjj",
                             "gjj", "swj", "scjgj", "ybj", "icbc", "abc", "boc", "ccb",
                             "bocom", "gzbank", "grcb", "chinalife", "district")),
    ("企业开办一件事", ("scjgj", "gaj", "swj", "rsj", "ybj", "gjj", "zsj", "rmyh", "icbc",
                       "ccb", "gzbank")),
    ("中小客车总量调控", ("jtj", "gaj", "clgls", "rsj", "swj", "sbjj", "lsj")),
    ("商事登记制度改革", ("scjgj", "wglj", "jtj", "wjw", "sthjj", "yjglj", "sw", "swj",
                         "gzhg", "hphg")),
    ("税收共治", ("swj", "scjgj", "ghzyj", "bdcdj", "zfcxjsj", "czj", "gaj", "sw", "gjj",
                 "gdj", "zls")),
    ("来穗人员积分制服务管理", ("lsj", "gaj", "rsj", "jyj", "zfcxjsj", "swj", "district")),
    ("义务教育招生入学", ("jyj", "gaj", "zfcxjsj", "ghzyj", "bdcdj", "rsj", "lsj", "wjw")),
    ("工程建设项目审批制度改革", ("zfcxjsj", "ghzyj", "sthjj", "slj", "jtj", "fgw", "rfb",
                                 "lyylj", "cgzfj", "qxj", "gdj", "zls", "rq", "district")),
    ("不动产登记一窗受理", ("ghzyj", "bdcdj", "swj", "zfcxjsj", "zy", "gjj", "ccb")),
    ("出生一件事", ("wjw", "gaj", "ybj", "rsj", "sbjj", "cdc")),
    ("社会救助", ("mzj", "cl", "rsj", "ybj", "fl", "tyjrswj", "district")),
    ("食品药品安全监管", ("scjgj", "nyncj", "wjw", "cdc", "gzhg", "sw")),
    ("生态环境保护", ("sthjj", "slj", "lyylj", "nyncj", "qxj", "cgzfj", "district")),
    ("城市运行管理", ("cgzfj", "jtj", "slj", "yjglj", "qxj", "gzdt", "gdj", "zls", "rq",
                     "district")),
    ("公共卫生应急", ("wjw", "cdc", "jjzx", "gaj", "bjzz", "gzhg", "district")),
    ("司法协同与执行联动", ("zy", "jcy", "hlwfy", "zscqfy", "hsfy", "gaj", "ghzyj", "bdcdj",
                          "clgls", "scjgj", "rmyh", "sfj")),
    ("社会信用体系建设", ()),
    ("营商环境改革", ()),
    ("政务服务一网通办", ()),
)
# fmt: on

# District bureaus reuse the vocabulary of their municipal counterpart ("yuexiu-wjj" → wjw).
_BUREAU_VOCABULARY = {"wjj": "wjw", "zsj": "zsj", "mzj": "mzj", "rsj": "rsj", "scjgj": "scjgj"}

# Basic-information domains (项 of a 1xxxxxxxx category).
_DOMAIN_POPULATION = "01"
_DOMAIN_ENTITY = "02"
_DOMAIN_GEOGRAPHY = "03"
_DOMAIN_CREDIT = "04"
_DOMAIN_LICENCE = "05"


@dataclass(frozen=True, slots=True)
class _ItemSpec:
    field: str
    name: str
    data_type: str
    key: bool  # the record's identifier: gets an element of its own and is_key
    sensitive: bool  # personal or commercial detail: shared more narrowly than the topic
    optional: bool


def _specs(*rows: str) -> tuple[_ItemSpec, ...]:
    """Item specs from compact rows ``field|名称|data_type|flags`` (k key, s sensitive, o opt)."""
    out = []
    for row in rows:
        field, name, data_type, flags = row.split("|")
        out.append(
            _ItemSpec(field, name, data_type or "string", "k" in flags, "s" in flags, "o" in flags)
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Action:
    letter: str
    slug: str
    label: str  # the tag
    doing: str  # how the abstract says the data arises
    suffix: str  # appended to the object for the topic name
    whole: tuple[str, ...]  # object endings that already say it: only 信息 is appended
    items: tuple[_ItemSpec, ...]
    index: int  # 项 of a departmental (3xxxxxxxx) category

    def topic_name(self, obj: str) -> str:
        return _topic_name(self.letter, obj)


# fmt: off
_ACTIONS: dict[str, _Action] = {
    a.letter: a
    for a in (
        _Action("I", "info", "基础", "在日常管理中采集", "信息", (), _specs(
            "category|类别||", "status|状态||", "start_date|起始日期|date|o",
            "handling_unit|管理单位||o", "description|情况说明||o"), 1),
        _Action("P", "permit", "许可", "在实施行政许可中产生", "许可信息", ("许可", "许可证"),
                _specs(
            "licence_no|许可证编号||k", "licence_item|许可事项||",
            "decision_date|许可决定日期|date|",
            "valid_from|有效期自|date|o", "valid_to|有效期至|date|", "licence_content|许可内容||o",
            "issuing_authority|许可机关||o", "licence_status|许可状态||o"), 2),
        _Action("F", "filing", "备案", "在办理备案中产生", "备案信息", ("备案", "联单"), _specs(
            "filing_no|备案编号||k", "filing_item|备案事项||", "filing_date|备案日期|date|",
            "filing_authority|备案机关||o", "filing_status|备案状态||o"), 3),
        _Action("R", "registration", "登记", "在办理登记中产生", "登记信息",
                ("登记", "注册", "登记簿"), _specs(
            "registration_no|登记编号||k", "registration_type|登记类型||",
            "registration_date|登记日期|date|", "registration_authority|登记机关||o",
            "registration_status|登记状态||o", "change_date|变更日期|date|o"), 4),
        _Action("X", "penalty", "处罚", "在实施行政处罚中产生", "行政处罚信息",
                ("处罚", "执法", "违法", "违法行为", "查处", "侵权"), _specs(
            "decision_no|行政处罚决定书文号||k", "violation_type|违法行为类型||",
            "violation_facts|主要违法事实||so", "penalty_basis|处罚依据||o",
            "penalty_category|处罚类别||", "penalty_content|处罚内容||o",
            "fine_amount|罚没款金额（万元）|decimal|o", "decision_date|处罚决定日期|date|",
            "penalty_authority|处罚机关||o"), 5),
        _Action("J", "inspection", "检查", "在监督检查中产生", "监督检查信息",
                ("检查", "监察", "巡查", "督查", "检测", "检定", "检验", "监测", "排查",
                 "督办", "整改", "巡河", "监管"), _specs(
            "inspection_no|检查编号||k", "inspection_date|检查日期|date|",
            "inspection_type|检查类型||", "inspection_result|检查结果||",
            "rectification|整改要求||o", "inspection_authority|检查机关||o",
            "inspectors|执法人员||so"), 6),
        _Action("S", "subsidy", "补贴", "在审核发放补贴中产生", "补贴发放信息",
                ("补贴", "补助", "资助", "资金", "待遇", "扶助", "保险金", "救助", "帮扶",
                 "供养", "保障", "服务", "发放", "建设费"), _specs(
            "grant_batch|发放批次号||k", "subsidy_type|补贴类型||",
            "subsidy_amount|发放金额（元）|decimal|", "grant_date|发放日期|date|",
            "approval_status|审核状态||o", "bank_account|收款账号||so",
            "funding_source|资金来源||o"), 7),
        _Action("T", "statistics", "统计", "在统计汇总中形成", "统计信息",
                ("统计", "调查", "核算", "普查", "监测", "吞吐量", "业务量", "客流"), _specs(
            "stat_period|统计期||k", "stat_indicator|统计指标||", "indicator_value|指标值|decimal|",
            "measure_unit|计量单位||", "stat_scope|统计口径||o", "data_source|数据来源||o",
            "yoy_change|同比增减（%）|decimal|o", "mom_change|环比增减（%）|decimal|o"), 8),
        _Action("C", "certificate", "证照", "在核发证照中产生", "证书信息",
                ("证", "证书", "资格", "照", "卡", "标志", "牌", "证明", "执业", "认定", "证照"),
                _specs(
            "certificate_no|证书编号||k", "certificate_type|证书类型||o",
            "issue_date|发证日期|date|", "valid_to|有效期至|date|o",
            "issuing_authority|发证机关||", "certificate_status|证书状态||o"), 9),
        _Action("D", "directory", "名录", "在名录管理中形成", "名录信息", ("名录", "名单", "目录"),
                _specs(
            "directory_type|名录类别||", "listing_status|列入状态||",
            "listed_date|列入日期|date|", "listing_reason|列入事由||o",
            "removed_date|移出日期|date|o", "deciding_authority|决定机关||o"), 10),
        _Action("A", "approval", "审批", "在行政审批中产生", "审批信息",
                ("审批", "审核", "核准", "认定", "申请", "审查", "评估", "配置", "出让", "核对",
                 "入学", "安置", "核实", "验收", "调控"), _specs(
            "approval_no|审批文号||k", "approval_item|审批事项||", "approval_result|审批结果||",
            "approval_date|审批日期|date|", "approval_authority|审批机关||o",
            "application_date|申请日期|date|o", "approval_opinion|审批意见||so"), 11),
        _Action("Q", "complaint", "投诉", "在受理群众诉求中产生", "投诉举报信息",
                ("工单", "信访事项", "投诉举报", "投诉", "申诉", "信访", "维权"), _specs(
            "ticket_no|工单编号||k", "received_at|受理时间|datetime|",
            "complaint_content|诉求内容||s", "handling_unit|承办单位||",
            "handling_result|办理结果||o", "closed_at|办结时间|datetime|o",
            "satisfaction|满意度评价||o"), 12),
        _Action("Y", "annual-report", "年报", "在年度报告公示中形成", "年度报告信息", ("年报",),
                _specs(
            "report_year|报告年度|integer|k", "submitted_date|报送日期|date|",
            "publicity_status|公示状态||", "employees|从业人数|integer|so",
            "revenue|营业总收入（万元）|decimal|so", "tax_paid|纳税总额（万元）|decimal|so"), 13),
    )
}

_SUBJECT_ITEMS: dict[str, tuple[_ItemSpec, ...]] = {
    "p": _specs(
        "name|姓名||", "id_number|公民身份号码||k", "gender|性别||o", "ethnicity|民族||o",
        "birth_date|出生日期|date|o", "phone|联系电话||so", "address|联系地址||so"),
    "e": _specs(
        "entity_name|单位名称||", "credit_code|统一社会信用代码||k",
        "legal_representative|法定代表人||o", "entity_type|单位类型||o",
        "entity_address|住所||o", "contact_phone|联系电话||so"),
    "t": _specs(
        "object_code|编号||k", "object_name|名称||", "location|地址||o",
        "longitude|经度|decimal|o", "latitude|纬度|decimal|o", "supervising_unit|主管单位||o"),
}
_TAIL_ITEMS = _specs(
    "district|所属区||o", "street|所属街道（镇）||o", "data_source_unit|数据来源单位||o",
    "updated_at|数据更新时间|datetime|", "remarks|备注||o")
# fmt: on

# Generated identifiers re-share the core element of the same name when a core topic sources
# one, so person and enterprise keys keep a single source (一数一源).
_RESHARED_FIELDS = ("id_number", "credit_code")
_RESHARE_PREFERENCE = ("person", "enterprise", "legal_entity", "entity")

# Why a not-shared topic may not be shared: the laws a provider would cite.
_STATISTICS_SECRECY = (
    "《中华人民共和国统计法》第二十五条：能够识别或者推断单个统计调查对象身份的资料不得对外提供"
)
_LEGAL_BASIS: dict[str, str] = {
    "tjj": _STATISTICS_SECRECY,
    "dcd": _STATISTICS_SECRECY,
    "swj": "《中华人民共和国税收征收管理法》第八条：税务机关应当依法为纳税人的情况保密",
    "wjw": "《中华人民共和国执业医师法》第二十二条、《医疗机构病历管理规定》第六条",
    "cdc": "《中华人民共和国传染病防治法》第十二条：不得泄露涉及个人隐私的有关信息、资料",
    "gaj": "《中华人民共和国居民身份证法》第六条、第十九条：公民个人信息应当予以保密",
    "rmyh": "《中华人民共和国中国人民银行法》第三十四条、《征信业管理条例》第十四条",
    "jcy": "《中华人民共和国刑事诉讼法》第一百五十二条、《人民检察院刑事诉讼规则》",
    "zy": "《中华人民共和国民事诉讼法》第六十八条：涉及个人隐私的证据应当保密",
}
_LEGAL_BASIS_BY_KIND: dict[DepartmentKind, str] = {
    DepartmentKind.financial: "《中华人民共和国商业银行法》第二十九条：为存款人保密",
}
_LEGAL_BASIS_DEFAULT = (
    "《中华人民共和国保守国家秘密法》第九条、《政务信息资源共享管理暂行办法》"
    "（国发〔2016〕51号）第九条"
)

_CONDITIONS = (
    "仅向依法履行{duty}职责的部门共享，使用前须经{short}审核同意",
    "需说明使用事由和法律依据，经{short}审核后按需共享，不得向第三方提供",
    "仅提供核验比对结果；明细数据须经{short}同意并限于{duty}用途",
    "涉及个人隐私的信息项须取得当事人书面授权，仅用于{duty}",
    "按“谁使用、谁负责”原则使用，仅限{duty}，使用情况接受{short}监督",
)
_DUTIES = (
    "行政审批",
    "行政执法",
    "社会救助审核",
    "信用监管",
    "公共服务",
    "统计分析",
    "资格审查",
    "业务协同",
)

_CYCLE_LABEL = {
    "irregular": "不定时",
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "semiannual": "每半年",
    "annual": "每年",
}

# (value, weight) tables: what a real catalog of each group looks like.
_SHARING_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("unconditional", 86), ("conditional", 14)),
    CatalogGroup.departmental: (("unconditional", 22), ("conditional", 73), ("not_shared", 5)),
    CatalogGroup.special: (("unconditional", 40), ("conditional", 57), ("not_shared", 3)),
}
_RESOURCE_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("interface", 60), ("table", 36), ("file", 4)),
    CatalogGroup.departmental: (("interface", 35), ("table", 45), ("file", 20)),
    CatalogGroup.special: (("interface", 45), ("table", 45), ("file", 10)),
}
_CYCLE_WEIGHTS: dict[CatalogGroup, tuple[tuple[str, int], ...]] = {
    CatalogGroup.basic: (("realtime", 30), ("daily", 55), ("weekly", 5), ("monthly", 10)),
    CatalogGroup.departmental: (
        ("realtime", 10),
        ("daily", 30),
        ("weekly", 10),
        ("monthly", 20),
        ("quarterly", 8),
        ("annual", 7),
        ("irregular", 15),
    ),
    CatalogGroup.special: (
        ("realtime", 15),
        ("daily", 40),
        ("weekly", 10),
        ("monthly", 20),
        ("irregular", 15),
    ),
}
_STATS_CYCLES = (("monthly", 40), ("quarterly", 30), ("semiannual", 5), ("annual", 25))
_FORMATS = {
    "interface": ("JSON", "JSON", "XML"),
    "table": ("CSV", "XLSX", "DBF"),
    "file": ("PDF", "OFD", "ZIP"),
}
_METHODS = {
    "interface": (("interface",), ("interface", "online_query")),
    "table": (("front_end_processor",), ("front_end_processor", "bulk_download")),
    "file": (("bulk_download",), ("online_query", "bulk_download")),
}
_SCOPES = ("administrative_basis", "work_reference", "data_verification", "business_collaboration")
_VARIANTS = ("（增量）", "（全量）", "（历史）", "（汇总）")

_DATES = {"2017": (dt.date(2016, 1, 4), 660), "2020": (dt.date(2018, 1, 2), 900)}


@functools.cache
def _topic_name(letter: str, obj: str) -> str:
    """道路运输经营 + 许可 → 道路运输经营许可信息; 出租汽车驾驶员从业资格 + 证照 → …资格信息."""
    action = _ACTIONS[letter]
    if obj.endswith(action.whole):
        return obj + "信息"
    return obj + action.suffix


def _pick(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    values = [v for v, _ in table]
    return rng.choices(values, weights=[w for _, w in table])[0]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One vocabulary entry: an object, the actions on it, its subject and basic domain."""

    obj: str
    actions: str
    subject: str  # p person, e entity, t thing
    domain: str  # "" or a basic-information domain 01..03


def _parse_vocabulary() -> dict[str, tuple[_Entry, ...]]:
    out: dict[str, tuple[_Entry, ...]] = {}
    for key, rows in VOCABULARY.items():
        entries = []
        for row in rows:
            obj, actions, flags = row.split("|")
            subject = "p" if "p" in flags else "e" if "e" in flags else "t"
            digits = "".join(c for c in flags if c.isdigit())
            entries.append(_Entry(obj, actions, subject, f"0{digits}" if digits else ""))
        out[key] = tuple(entries)
    return out


_ENTRIES = _parse_vocabulary()


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A topic that could be generated: enough to name it; built only when drawn."""

    provider: str
    group: CatalogGroup
    name: str
    obj: str
    action: str  # an _ACTIONS letter
    subject: str
    category_head: str  # 类 + 项, e.g. "105" or "212"
    project: str  # "" unless special-project


class _Generator:
    """Draws and builds topics; holds what must stay unique across the whole catalog."""

    def __init__(
        self,
        units: Sequence[DepartmentCreate],
        core: Sequence[TopicCreate],
        seed: int,
        on_progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        self.units = {u.code: u for u in units}
        self.unit_index = {u.code: i + 1 for i, u in enumerate(units)}
        self.seed = seed
        self.on_progress = on_progress
        self.total = total
        self.built = len(core)
        self.used_names = {(t.provider, t.name) for t in core}
        self.used_slugs = {t.slug for t in core if t.slug is not None}
        self.slug_counter: dict[str, int] = {}
        self.category_counter: dict[str, int] = {}
        self.core_elements = _core_identifiers(core)

    # --- candidates -------------------------------------------------------------------

    def _vocabulary_key(self, unit: DepartmentCreate) -> str:
        if unit.code in _ENTRIES:
            return unit.code
        suffix = unit.code.rsplit("-", 1)[-1]
        if "-" in unit.code and suffix in _BUREAU_VOCABULARY:
            return _BUREAU_VOCABULARY[suffix]
        if unit.kind is DepartmentKind.district:
            return "district"
        raise ValueError(f"unit {unit.code!r} has no vocabulary to generate topics from")

    def _prefix(self, unit: DepartmentCreate) -> str:
        """District units name their topics after the district: 越秀区最低生活保障信息."""
        if unit.kind is not DepartmentKind.district:
            return ""
        short = unit.short_name or unit.name
        return short[: short.index("区") + 1] if "区" in short else ""

    def candidates(self, providers: Iterable[str], group: CatalogGroup) -> list[_Candidate]:
        """Every topic ``providers`` could offer in ``group``, in a stable order."""
        out: list[_Candidate] = []
        for code in providers:
            unit = self.units[code]
            key = self._vocabulary_key(unit)
            prefix = self._prefix(unit)
            entries = _ENTRIES[key]
            if group is CatalogGroup.basic:
                out.extend(self._basic(unit, prefix, entries))
            elif group is CatalogGroup.departmental:
                for e in entries:
                    for letter in e.actions:
                        if e.domain and letter in "IRC":
                            continue  # basic information, drawn into the basic group
                        name = prefix + _ACTIONS[letter].topic_name(e.obj)
                        head = f"3{_ACTIONS[letter].index:02d}"
                        out.append(
                            _Candidate(code, group, name, e.obj, letter, e.subject, head, "")
                        )
            else:
                for p_index, (project, members) in enumerate(PROJECTS, start=1):
                    if members and key not in members:
                        continue
                    for e in entries:
                        for letter in e.actions:
                            name = f"{prefix}{_ACTIONS[letter].topic_name(e.obj)}（{project}）"
                            out.append(
                                _Candidate(
                                    code,
                                    group,
                                    name,
                                    e.obj,
                                    letter,
                                    e.subject,
                                    f"2{p_index:02d}",
                                    project,
                                )
                            )
        return out

    def _basic(
        self, unit: DepartmentCreate, prefix: str, entries: Sequence[_Entry]
    ) -> list[_Candidate]:
        """Basic information: flagged objects, e-licences (电子证照) and 双公示 records."""
        basic = CatalogGroup.basic
        out: list[_Candidate] = []
        has_permit = has_penalty = False
        for e in entries:
            has_permit |= "P" in e.actions
            has_penalty |= "X" in e.actions
            for letter in e.actions:
                name = prefix + _ACTIONS[letter].topic_name(e.obj)
                if e.domain and letter in "IRC":
                    out.append(
                        _Candidate(
                            unit.code, basic, name, e.obj, letter, e.subject, f"1{e.domain}", ""
                        )
                    )
                if letter == "C" and "电子证照" not in e.obj:
                    licence = name.removesuffix("信息") + "电子证照信息"
                    out.append(
                        _Candidate(
                            unit.code,
                            basic,
                            licence,
                            e.obj,
                            "C",
                            e.subject,
                            f"1{_DOMAIN_LICENCE}",
                            "",
                        )
                    )
        short = unit.short_name or unit.name
        if has_permit:
            out.append(
                _Candidate(
                    unit.code,
                    basic,
                    f"{short}行政许可信息（双公示）",
                    "行政许可",
                    "P",
                    "e",
                    f"1{_DOMAIN_CREDIT}",
                    "",
                )
            )
        if has_penalty:
            out.append(
                _Candidate(
                    unit.code,
                    basic,
                    f"{short}行政处罚信息（双公示）",
                    "行政处罚",
                    "X",
                    "e",
                    f"1{_DOMAIN_CREDIT}",
                    "",
                )
            )
        return out

    # --- drawing ----------------------------------------------------------------------

    def draw(
        self,
        rng: random.Random,
        pool: list[_Candidate],
        count: int,
        cover: set[str],
    ) -> list[_Candidate]:
        """``count`` candidates with unused names, first one for each provider in ``cover``.

        Covered providers are removed from ``cover``. When the vocabulary runs out, names
        get a variant suffix (增量/全量/历史/汇总), as real catalogs split big resources.
        """
        rng.shuffle(pool)
        chosen: list[_Candidate] = []

        def take(c: _Candidate) -> None:
            self.used_names.add((c.provider, c.name))
            cover.discard(c.provider)
            chosen.append(c)

        for c in pool:
            if len(chosen) >= count:
                break
            if c.provider in cover and (c.provider, c.name) not in self.used_names:
                take(c)
        for variant in ("", *_VARIANTS):
            for c in pool:
                if len(chosen) >= count:
                    return chosen
                v = (
                    c
                    if not variant
                    else _Candidate(
                        c.provider,
                        c.group,
                        c.name + variant,
                        c.obj,
                        c.action,
                        c.subject,
                        c.category_head,
                        c.project,
                    )
                )
                if (v.provider, v.name) not in self.used_names:
                    take(v)
        if len(chosen) < count:
            raise ValueError(
                f"the vocabulary offers only {len(chosen)} of {count} topics for this draw"
            )
        return chosen

    # --- building ---------------------------------------------------------------------

    def build(self, rng: random.Random, c: _Candidate, era: str) -> TopicCreate:
        """A complete, valid topic for candidate ``c`` published in ``era`` (2017 or 2020)."""
        unit = self.units[c.provider]
        action = _ACTIONS[c.action]
        short = unit.short_name or unit.name
        slug = self._slug(c.provider, action.slug)
        element_stem = f"{c.provider.replace('-', '_')}.{slug.removeprefix(c.provider + '-')}"
        element_stem = element_stem.replace("-", "_")

        sharing_type = _pick(rng, _SHARING_WEIGHTS[c.group])
        if c.action == "T":
            # Aggregates carry no personal data; they are rarely withheld.
            sharing_type = "unconditional" if rng.random() < 0.6 else "conditional"
        resource_type = _pick(rng, _RESOURCE_WEIGHTS[c.group])
        if c.action == "T" and resource_type == "interface":
            resource_type = "table"
        cycle = _pick(rng, _STATS_CYCLES if c.action == "T" else _CYCLE_WEIGHTS[c.group])

        items = self._items(rng, c, action, sharing_type, element_stem)
        sharing: dict[str, Any] = {
            "type": sharing_type,
            "methods": list(rng.choice(_METHODS[resource_type])),
            "usage_scopes": sorted(rng.sample(_SCOPES, rng.randint(1, 3)), key=_SCOPES.index),
        }
        if sharing_type == "conditional":
            sharing["conditions"] = rng.choice(_CONDITIONS).format(
                duty=rng.choice(_DUTIES), short=short
            )
        elif sharing_type == "not_shared":
            sharing["legal_basis"] = _LEGAL_BASIS.get(
                c.provider.rsplit("-", 1)[-1],
                _LEGAL_BASIS_BY_KIND.get(unit.kind, _LEGAL_BASIS_DEFAULT),
            )
            sharing["usage_scopes"] = []
        open_type = "closed"
        if sharing_type != "not_shared" and c.action in "TDPX" and rng.random() < 0.35:
            open_type = "open"

        names = "、".join(str(it["name"]) for it in items[:4])
        lead = f"为支撑{c.project}专项应用，" if c.project else ""
        abstract = (
            f"{lead}{unit.name}{action.doing}的{c.name.split('（')[0]}，"
            f"包括{names}等{len(items)}项，{_CYCLE_LABEL[cycle]}更新。"
        )
        start, span = _DATES[era]
        tags = [action.label] + ([c.project] if c.project else [])
        raw: dict[str, Any] = {
            "category": self._category(c),
            "group": c.group.value,
            "name": c.name,
            "slug": slug,
            "provider": c.provider,
            "abstract": abstract,
            "format": rng.choice(_FORMATS[resource_type]),
            "resource_type": resource_type,
            "items": items,
            "sharing": sharing,
            "open": {"type": open_type},
            "update_cycle": cycle,
            "published_on": start + dt.timedelta(days=rng.randrange(span)),
            "tags": tags,
        }
        topic = TopicCreate.model_validate(raw)
        self.built += 1
        if self.on_progress is not None:
            self.on_progress(self.built, self.total)
        return topic

    def _slug(self, provider: str, action_slug: str) -> str:
        while True:
            n = self.slug_counter.get(provider, 0) + 1
            self.slug_counter[provider] = n
            slug = f"{provider}-{action_slug}-{n:04d}"
            if slug not in self.used_slugs:
                self.used_slugs.add(slug)
                return slug

    def _category(self, c: _Candidate) -> str:
        """类 + 项 from the candidate, 目 = provider's position, 细目 = running number."""
        front = f"{c.category_head}{self.unit_index[c.provider]:03d}"
        n = self.category_counter.get(front, 0) + 1
        if n > 999:
            raise ValueError(f"more than 999 topics under category {front}")
        self.category_counter[front] = n
        return f"{front}{n:03d}"

    def _items(
        self,
        rng: random.Random,
        c: _Candidate,
        action: _Action,
        sharing_type: str,
        element_stem: str,
    ) -> list[dict[str, Any]]:
        subject = () if c.action == "T" else _SUBJECT_ITEMS[c.subject]
        specs = [*subject, *action.items, *_TAIL_ITEMS]
        required = [s for s in specs if not s.optional]
        optional = [s for s in specs if s.optional]
        wanted = rng.randint(max(3, len(required)), min(25, len(specs)))
        picked = set(rng.sample(range(len(optional)), wanted - len(required)))
        keep = {id(s) for s in required} | {id(optional[i]) for i in picked}
        # Details of the action (and of things the department keeps) can be its own data
        # elements; a person's or entity's attributes belong to the population and legal-entity
        # sources, so they are never claimed here.
        own = {id(s) for s in action.items} | (
            {id(s) for s in subject} if c.subject == "t" else set()
        )
        items: list[dict[str, Any]] = []
        for spec in specs:
            own_detail = id(spec) in own
            if id(spec) not in keep:
                continue
            name = c.obj + spec.name if spec.field == "object_code" else spec.name
            item: dict[str, Any] = {
                "field": spec.field,
                "name": name[:100],
                "data_type": spec.data_type,
                "sharing_type": self._item_sharing(rng, sharing_type, spec),
            }
            if spec.field in _RESHARED_FIELDS:
                # A person's or entity's identifier is never this topic's own datum: it
                # re-shares the core source, or carries no element when there is none.
                if spec.field in self.core_elements:
                    item["element"] = self.core_elements[spec.field]
                    item["is_source"] = False
            elif spec.key or (own_detail and rng.random() < 0.2):
                item["element"] = f"{element_stem}.{spec.field}"
                item["is_source"] = True
            if spec.key and (spec.field in _RESHARED_FIELDS or spec in action.items):
                item["is_key"] = True
            elif item["sharing_type"] == "not_shared":
                # A detail withheld by law can still be confirmed (核验): the provider lets
                # members verify a declared value without disclosing it. Decided without
                # the generator's random stream, so the rest of the catalog stays as it was.
                item["verifiable"] = True
            items.append(item)
        return items

    @staticmethod
    def _item_sharing(rng: random.Random, topic: str, spec: _ItemSpec) -> str:
        """An item is as open as its topic, or narrower when it is a sensitive detail."""
        if topic == "unconditional":
            return "conditional" if spec.sensitive and rng.random() < 0.6 else topic
        if topic == "conditional" and spec.sensitive and not spec.key and rng.random() < 0.3:
            return "not_shared"
        return topic


def _core_identifiers(core: Sequence[TopicCreate]) -> dict[str, str]:
    """Core elements generated identifier items re-share, by item field."""
    sourced = sorted(
        {it.element for t in core for it in t.items if it.element is not None and it.is_source}
    )
    out: dict[str, str] = {}
    for fld in _RESHARED_FIELDS:
        matches = [e for e in sourced if e.rsplit(".", 1)[-1] == fld]

        def rank(element: str) -> tuple[int, str]:
            head = element.split(".", 1)[0]
            order = _RESHARE_PREFERENCE.index(head) if head in _RESHARE_PREFERENCE else 99
            return order, element

        if matches:
            out[fld] = min(matches, key=rank)
    return out


def _providers_2017(units: Sequence[DepartmentCreate]) -> list[str]:
    return [
        u.code
        for u in units
        if u.kind is DepartmentKind.municipal or u.code in CATALOG_2017_VERTICALS
    ]


def _addition_row(unit: DepartmentCreate, catalog: set[str]) -> str:
    return "catalog" if unit.code in catalog else unit.kind.value


def _generate_2017(
    gen: _Generator, units: Sequence[DepartmentCreate], core: Sequence[TopicCreate]
) -> list[TopicCreate]:
    providers = _providers_2017(units)
    if len(providers) != PROVIDERS_2017:
        raise ValueError(
            f"guangzhou-2017 needs {PROVIDERS_2017} providing departments (municipal units "
            f"plus {sorted(CATALOG_2017_VERTICALS)}), the units give {len(providers)}"
        )
    allowed = set(providers)
    stray = sorted({t.provider for t in core} - allowed)
    if stray:
        raise ValueError(f"core topics of {stray} cannot be in the guangzhou-2017 catalog")
    rng = random.Random(f"guangzhou-2017:{gen.seed}")
    cover = allowed - {t.provider for t in core}
    chosen: list[_Candidate] = []
    # Departmental first: every department has such topics, so coverage is met there.
    for group in (CatalogGroup.departmental, CatalogGroup.basic, CatalogGroup.special):
        need = TARGETS_2017[group] - sum(1 for t in core if t.group is group)
        if need < 0:
            raise ValueError(
                f"core topics hold {TARGETS_2017[group] - need} {group.value} topics, "
                f"more than the {TARGETS_2017[group]} of guangzhou-2017"
            )
        chosen += gen.draw(rng, gen.candidates(providers, group), need, cover)
    if cover:
        raise ValueError(f"no topic could be drawn for {sorted(cover)}")
    # Build in catalog order (group, then provider's position) so output reads naturally.
    chosen.sort(key=lambda c: (c.category_head[0], gen.unit_index[c.provider]))
    return [gen.build(rng, c, "2017") for c in chosen]


def _generate_2020_additions(
    gen: _Generator, units: Sequence[DepartmentCreate], core: Sequence[TopicCreate]
) -> list[TopicCreate]:
    catalog = set(_providers_2017(units))
    rng = random.Random(f"platform-2020:{gen.seed}")
    rows: dict[str, list[str]] = {}
    for u in units:
        rows.setdefault(_addition_row(u, catalog), []).append(u.code)
    unknown = sorted(set(rows) - set(ADDITIONS_2020))
    if unknown:
        raise ValueError(f"no platform-2020 quota for units of kind {unknown}")
    # Core topics of units outside the 2017 catalog count toward their row's quota.
    row_of = {u.code: _addition_row(u, catalog) for u in units}
    core_counts = Counter((row_of[t.provider], t.group) for t in core)
    cover = {u.code for u in units} - catalog - {t.provider for t in core}
    chosen: list[_Candidate] = []
    for row, quota in ADDITIONS_2020.items():
        providers = rows.get(row, [])
        if not providers:
            raise ValueError(f"platform-2020 expects units of kind {row!r}")
        for group in (CatalogGroup.departmental, CatalogGroup.basic, CatalogGroup.special):
            need = quota.get(group, 0) - core_counts[(row, group)]
            if need < 0:
                raise ValueError(
                    f"core topics hold {core_counts[(row, group)]} {group.value} topics of "
                    f"{row} units, more than the {quota.get(group, 0)} of platform-2020"
                )
            if need:
                pool = gen.candidates(providers, group)
                chosen += gen.draw(rng, pool, need, cover)
    if cover:
        raise ValueError(f"no topic could be drawn for {sorted(cover)}")
    chosen.sort(key=lambda c: (gen.unit_index[c.provider], c.category_head[0]))
    return [gen.build(rng, c, "2020") for c in chosen]


def generate_catalog(
    profile: str,
    units: list[DepartmentCreate],
    core: list[TopicCreate],
    seed: int,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[TopicCreate]:
    """The catalog of ``profile``: the core topics first, then generated ones.

    Deterministic: the same profile, units, core topics and seed give the same list; another
    seed draws other topics. ``on_progress(done, total)`` is called after each topic so a
    seeding command can show a progress bar. Raises ``ValueError`` for an unknown profile or
    when the units or core topics cannot fit the profile's shape (e.g. more core basic topics
    than the 71 of guangzhou-2017, or a core topic from a district in guangzhou-2017).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    if profile == "core":
        return list(core)
    total = sum(TARGETS_2017.values()) if profile == "guangzhou-2017" else TOTAL_2020
    gen = _Generator(units, core, seed, on_progress, total)
    if profile == "guangzhou-2017":
        topics = [*core, *_generate_2017(gen, units, core)]
    else:
        # The 2017 part counts only core topics of its 52 departments; the rest count
        # toward the 2020 additions of their units.
        in_2017 = set(_providers_2017(units))
        core_2017 = [t for t in core if t.provider in in_2017]
        core_later = [t for t in core if t.provider not in in_2017]
        topics = [*core, *_generate_2017(gen, units, core_2017)]
        topics += _generate_2020_additions(gen, units, core_later)
    if len(topics) != total:
        raise ValueError(f"{profile} needs {total} topics, the quotas gave {len(topics)}")
    conflicts = find_source_conflicts(topics)
    if conflicts:
        c = conflicts[0]
        raise ValueError(
            f"element {c.element!r} is sourced by both {topics[c.first].name!r} and "
            f"{topics[c.second].name!r}"
        )
    return topics
