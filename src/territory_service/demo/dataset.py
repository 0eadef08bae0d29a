"""A deterministic demo data set: China's territory tree, a sales team and about 2,000 customers.

Every value, ids included, comes from one seeded `random.Random`, so the same seed always builds the
same rows and a demo, a screenshot or a benchmark can be reproduced exactly. Nothing here touches a
database: the objects are built in memory and a loader inserts them.

The pool holds what a duplicate detector and the group policy need to be shown off: a few group
companies whose subsidiaries sit in other regions, and a few companies entered twice under slightly
different names.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Any

# Through `territory_service.models`, so that every mapper the relationships name is registered
# before the first object is built.
from territory_service.models import Customer, Owner, Territory, TerritoryMember
from territory_service.territories.models import DistributionStrategy, MemberRole

BASE_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SOURCE = "demo-crm"
CUSTOMER_COUNT = 2000

_ROUND_ROBIN = DistributionStrategy.ROUND_ROBIN
_WEIGHTED = DistributionStrategy.WEIGHTED
_LEAST_LOADED = DistributionStrategy.LEAST_LOADED

_REGIONS: tuple[tuple[str, str, DistributionStrategy], ...] = (
    ("CN-NORTH", "华北", _ROUND_ROBIN),
    ("CN-NORTHEAST", "东北", _ROUND_ROBIN),
    ("CN-EAST", "华东", _WEIGHTED),
    ("CN-CENTRAL", "华中", _ROUND_ROBIN),
    ("CN-SOUTH", "华南", _LEAST_LOADED),
    ("CN-SOUTHWEST", "西南", _ROUND_ROBIN),
    ("CN-NORTHWEST", "西北", _ROUND_ROBIN),
)

# region, ISO 3166-2:CN letters, name, full name, GB/T 2260 division prefix, share of customers,
# cities (the capital first).
_PROVINCE_TABLE = """
CN-NORTH      BJ 北京   北京市             11  9 北京
CN-NORTH      TJ 天津   天津市             12  3 天津
CN-NORTH      HE 河北   河北省             13  4 石家庄 唐山 保定 廊坊 邯郸
CN-NORTH      SX 山西   山西省             14  2 太原 大同 长治 晋中
CN-NORTH      NM 内蒙古 内蒙古自治区       15  2 呼和浩特 包头 鄂尔多斯 赤峰
CN-NORTHEAST  LN 辽宁   辽宁省             21  3 沈阳 大连 鞍山 锦州
CN-NORTHEAST  JL 吉林   吉林省             22  2 长春 吉林 四平 延吉
CN-NORTHEAST  HL 黑龙江 黑龙江省           23  2 哈尔滨 大庆 齐齐哈尔 牡丹江
CN-EAST       SH 上海   上海市             31  9 上海
CN-EAST       JS 江苏   江苏省             32 11 南京 苏州 无锡 常州 南通 徐州
CN-EAST       ZJ 浙江   浙江省             33  9 杭州 宁波 温州 嘉兴 绍兴 金华
CN-EAST       AH 安徽   安徽省             34  4 合肥 芜湖 蚌埠 安庆
CN-EAST       FJ 福建   福建省             35  5 福州 厦门 泉州 漳州
CN-EAST       JX 江西   江西省             36  3 南昌 赣州 九江 上饶
CN-EAST       SD 山东   山东省             37  7 济南 青岛 烟台 潍坊 临沂
CN-CENTRAL    HA 河南   河南省             41  5 郑州 洛阳 新乡 南阳
CN-CENTRAL    HB 湖北   湖北省             42  5 武汉 宜昌 襄阳 荆州
CN-CENTRAL    HN 湖南   湖南省             43  4 长沙 株洲 湘潭 衡阳
CN-SOUTH      GD 广东   广东省             44 12 广州 深圳 东莞 佛山 珠海 惠州
CN-SOUTH      GX 广西   广西壮族自治区     45  2 南宁 柳州 桂林 北海
CN-SOUTH      HI 海南   海南省             46  1 海口 三亚 儋州
CN-SOUTHWEST  CQ 重庆   重庆市             50  4 重庆
CN-SOUTHWEST  SC 四川   四川省             51  5 成都 绵阳 德阳 宜宾
CN-SOUTHWEST  GZ 贵州   贵州省             52  2 贵阳 遵义 六盘水 安顺
CN-SOUTHWEST  YN 云南   云南省             53  2 昆明 曲靖 玉溪 大理
CN-SOUTHWEST  XZ 西藏   西藏自治区         54  1 拉萨 日喀则 林芝
CN-NORTHWEST  SN 陕西   陕西省             61  3 西安 宝鸡 咸阳 榆林
CN-NORTHWEST  GS 甘肃   甘肃省             62  1 兰州 天水 酒泉
CN-NORTHWEST  QH 青海   青海省             63  1 西宁 海东 格尔木
CN-NORTHWEST  NX 宁夏   宁夏回族自治区     64  1 银川 石嘴山 吴忠
CN-NORTHWEST  XJ 新疆   新疆维吾尔自治区   65  1 乌鲁木齐 克拉玛依 喀什 昌吉
"""

# Districts of the larger cities; elsewhere a CRM record names the city only.
_DISTRICT_TABLE = """
北京 海淀区 朝阳区 东城区 西城区 丰台区 昌平区
天津 滨海新区 和平区 南开区 西青区
石家庄 长安区 裕华区
沈阳 和平区 浑南区 铁西区
大连 中山区 甘井子区
哈尔滨 南岗区 道里区 松北区
上海 浦东新区 徐汇区 闵行区 静安区 嘉定区 松江区
南京 玄武区 鼓楼区 江宁区
苏州 姑苏区 吴中区 虎丘区 昆山市
无锡 滨湖区 新吴区
杭州 西湖区 滨江区 余杭区 萧山区
宁波 鄞州区 北仑区 海曙区
合肥 蜀山区 包河区
福州 鼓楼区 仓山区
厦门 思明区 湖里区
济南 历下区 槐荫区
青岛 市南区 黄岛区 城阳区
郑州 金水区 中原区 二七区
武汉 江汉区 洪山区 武昌区
长沙 岳麓区 雨花区 开福区
广州 天河区 越秀区 黄埔区 番禺区
深圳 南山区 福田区 宝安区 龙岗区
佛山 南海区 顺德区
南宁 青秀区 西乡塘区
重庆 渝中区 江北区 渝北区 九龙坡区
成都 武侯区 锦江区 成华区 双流区
昆明 五华区 盘龙区
西安 雁塔区 未央区 碑林区
"""

_PROVINCE_STRATEGIES = {
    "GD": _WEIGHTED,
    "JS": _WEIGHTED,
    "ZJ": _WEIGHTED,
    "SD": _WEIGHTED,
    "SH": _LEAST_LOADED,
    "BJ": _LEAST_LOADED,
    "SC": _LEAST_LOADED,
    "HB": _LEAST_LOADED,
}

# external id, name, e-mail local part, active, capacity.
_OWNERS: tuple[tuple[str, str, str, bool, int | None], ...] = (
    ("u1001", "郑国强", "zhengguoqiang", True, None),
    ("u1002", "张伟", "zhangwei", True, 300),
    ("u1003", "王芳", "wangfang", True, 250),
    ("u1004", "李娜", "lina", True, None),
    ("u1005", "刘洋", "liuyang", True, 200),
    ("u1006", "陈静", "chenjing", True, 180),
    ("u1007", "杨帆", "yangfan", True, None),
    ("u1008", "赵磊", "zhaolei", True, 400),
    ("u1009", "黄敏", "huangmin", True, 350),
    ("u1010", "周杰", "zhoujie", False, 200),
    ("u1011", "吴婷", "wuting", True, 300),
    ("u1012", "徐浩", "xuhao", True, None),
    ("u1013", "孙丽", "sunli", True, 250),
    ("u1014", "马超", "machao", True, None),
    ("u1015", "朱琳", "zhulin", True, 400),
    ("u1016", "胡斌", "hubin", True, 150),
    ("u1017", "郭晓东", "guoxiaodong", True, None),
    ("u1018", "何婷", "heting", False, None),
    ("u1019", "罗军", "luojun", True, 220),
    ("u1020", "高峰", "gaofeng", True, None),
    ("u1021", "林晨", "linchen", True, 160),
    ("team-east-ka", "华东大客户组", "east-ka", True, None),
    ("team-south-channel", "华南渠道组", "south-channel", True, 500),
)

_MANAGER = MemberRole.MANAGER
_MEMBER = MemberRole.MEMBER

# owner external id, territory code, role, weight, capacity inside the territory.
_MEMBERS: tuple[tuple[str, str, MemberRole, int, int | None], ...] = (
    ("u1001", "CN", _MANAGER, 1, None),
    ("u1002", "CN-NORTH", _MANAGER, 1, None),
    ("u1004", "CN-NORTH", _MEMBER, 1, None),
    ("u1002", "CN-BJ", _MEMBER, 2, None),
    ("u1003", "CN-BJ", _MEMBER, 3, 200),
    ("u1003", "CN-TJ", _MEMBER, 1, None),
    ("u1004", "CN-HE", _MEMBER, 2, None),
    ("u1005", "CN-NORTHEAST", _MANAGER, 1, None),
    ("u1006", "CN-NORTHEAST", _MEMBER, 2, None),
    ("u1006", "CN-LN", _MEMBER, 2, 120),
    ("u1007", "CN-EAST", _MANAGER, 1, None),
    ("u1010", "CN-EAST", _MEMBER, 1, None),
    ("u1011", "CN-EAST", _MEMBER, 2, None),
    ("team-east-ka", "CN-EAST", _MEMBER, 3, None),
    ("u1008", "CN-SH", _MEMBER, 3, 350),
    ("u1009", "CN-JS", _MEMBER, 2, None),
    ("u1009", "CN-ZJ", _MEMBER, 1, 150),
    ("u1011", "CN-SD", _MEMBER, 2, None),
    ("u1012", "CN-CENTRAL", _MANAGER, 1, None),
    ("u1013", "CN-CENTRAL", _MEMBER, 2, None),
    ("u1013", "CN-HB", _MEMBER, 3, None),
    ("u1014", "CN-SOUTH", _MANAGER, 1, None),
    ("u1016", "CN-SOUTH", _MEMBER, 1, None),
    ("team-south-channel", "CN-SOUTH", _MEMBER, 1, 500),
    ("u1015", "CN-GD", _MEMBER, 3, 300),
    ("u1017", "CN-SOUTHWEST", _MANAGER, 1, None),
    ("u1018", "CN-SOUTHWEST", _MEMBER, 1, None),
    ("u1019", "CN-SOUTHWEST", _MEMBER, 2, None),
    ("u1019", "CN-SC", _MEMBER, 2, None),
    ("u1019", "CN-CQ", _MEMBER, 1, 120),
    ("u1020", "CN-NORTHWEST", _MANAGER, 1, None),
    ("u1021", "CN-NORTHWEST", _MEMBER, 2, None),
    ("u1021", "CN-SN", _MEMBER, 2, None),
)


@dataclass(frozen=True)
class _Industry:
    weight: int
    revenue_per_employee: float  # CNY, median
    words: tuple[str, ...]


_INDUSTRIES: dict[str, _Industry] = {
    "manufacturing": _Industry(25, 900_000, ("机械制造", "精密机械", "汽车零部件", "电气设备")),
    "technology": _Industry(16, 700_000, ("科技", "信息技术", "软件", "网络科技", "智能科技")),
    "retail": _Industry(12, 1_200_000, ("商贸", "百货", "连锁超市", "电子商务", "贸易")),
    "logistics": _Industry(8, 800_000, ("物流", "供应链管理", "国际货运代理", "仓储服务")),
    "healthcare": _Industry(7, 1_000_000, ("医药", "医疗器械", "生物科技", "健康管理")),
    "construction": _Industry(7, 800_000, ("建设工程", "建筑装饰", "市政工程")),
    "finance": _Industry(5, 2_500_000, ("投资管理", "融资租赁", "保险代理", "资产管理")),
    "energy": _Industry(5, 1_800_000, ("新能源", "电力工程", "燃气", "光伏科技")),
    "education": _Industry(5, 400_000, ("教育科技", "职业培训", "文化传播")),
    "real_estate": _Industry(5, 1_500_000, ("置业", "房地产开发", "物业服务")),
    "agriculture": _Industry(5, 600_000, ("农业科技", "农牧", "种业", "食品")),
}

# Brand words of the generated companies; the groups and near-duplicates below use others.
_BRAND_TABLE = (
    "恒达 宏远 金泰 中联 天成 嘉禾 永信 新宇 正邦 同创 安泰 润丰 远航 德利 长青 明辉 凯越 志诚 "
    "盛世 东昊 易达 三峰 联创 众合 华宇 信诚 泰和 景程 优立 云帆 卓越 鑫源 鸿运 瑞达 启明 宝丰 "
    "万利 金桥 天禾 和信 佳美 诚泰 晨光 海达 锦程 弘业 鼎力 华通 兴业 广源 立信 运通 博雅 科达 "
    "荣昌 祥瑞 旭日 高远 恒信 汇泽 金鹏 蓝天 绿洲 百川 九州"
)
_BRANDS = tuple(_BRAND_TABLE.split())

_ERP_SYSTEMS = ("SAP", "Oracle", "用友", "金蝶", "鼎捷", "none")


# Group companies: the root's line names the industry, each indented line is a subsidiary
# (province, city, name), placed in other regions so that one group spans several teams.
_GROUP_TABLE = """
manufacturing 上海   上海     海川集团有限公司
              江苏   苏州     海川集团（苏州）制造有限公司
              广东   广州     海川集团广州分公司
              四川   成都     海川（成都）智能装备有限公司
              北京   北京     海川集团北京分公司
energy        北京   北京     华晟控股集团有限公司
              天津   天津     华晟（天津）新能源有限公司
              陕西   西安     华晟（西安）电力工程有限公司
              内蒙古 鄂尔多斯 华晟新能源（内蒙古）有限公司
healthcare    广东   深圳     鼎新医药集团股份有限公司
              湖北   武汉     鼎新医药（武汉）有限公司
              浙江   杭州     鼎新医药（杭州）有限公司
              重庆   重庆     鼎新医疗器械（重庆）有限公司
logistics     浙江   宁波     瑞丰物流集团有限公司
              辽宁   沈阳     瑞丰供应链（沈阳）有限公司
              河南   郑州     瑞丰物流郑州分公司
              福建   厦门     瑞丰国际货运代理（厦门）有限公司
agriculture   黑龙江 哈尔滨   金穗农业发展集团有限公司
              湖南   长沙     金穗农业（长沙）有限公司
              新疆   乌鲁木齐 金穗种业（新疆）有限公司
technology    浙江   杭州     星辰数科集团有限公司
              北京   北京     星辰数科（北京）科技有限公司
              广东   深圳     星辰数科（深圳）有限公司
              四川   成都     星辰数科成都分公司
              贵州   贵阳     星辰数科（贵阳）大数据有限公司
retail        山东   济南     汇通商业集团有限公司
              山东   青岛     汇通商业（青岛）有限公司
              江苏   南京     汇通超市（南京）有限公司
              陕西   西安     汇通商业（西安）有限公司
"""

# The same company entered twice: the legal form, full-width characters, spacing, punctuation or
# the English "Co., Ltd." spelling differs, and mostly the second entry lacks a registration id
# ("+" when it has its own). Columns: city, industry, +/-, first name, second name; separated by
# " | " because names may contain spaces.
_NEAR_DUPLICATE_TABLE = """
上海 | technology | - | 上海华锐科技有限公司 | 上海华锐科技股份有限公司
杭州 | technology | - | 杭州KT智联网络科技有限公司 | 杭州ＫＴ智联网络科技有限公司
宁波 | retail | + | 宁波海纳（国际）贸易有限公司 | 宁波海纳(国际)贸易有限公司
武汉 | logistics | - | 武汉长江顺达物流有限公司 | 武汉  长江顺达物流 有限公司
苏州 | manufacturing | - | Sunrise Optics (Suzhou) Co., Ltd. | SUNRISE OPTICS (SUZHOU) CO.,LTD.
青岛 | agriculture | + | 青岛海蓝食品股份有限公司 | 青岛海蓝食品有限公司
西安 | manufacturing | - | 西安秦创新材料科技有限公司 | 西安秦创·新材料科技有限公司
天津 | logistics | - | Bluewave Freight (Tianjin) Co., Ltd. | Bluewave Freight (Tianjin) Co. Ltd
"""

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORGANIZATION_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class DemoDataset:
    territories: list[Territory]  # parents before children
    owners: list[Owner]
    members: list[TerritoryMember]
    customers: list[Customer]  # group roots before their subsidiaries


@dataclass(frozen=True)
class _City:
    name: str
    districts: tuple[str, ...]


@dataclass(frozen=True)
class _Province:
    region_code: str
    code: str
    name: str
    full_name: str
    division: str
    weight: int
    cities: tuple[_City, ...]

    def city(self, name: str) -> _City:
        return next(city for city in self.cities if city.name == name)


def _parse_provinces() -> tuple[_Province, ...]:
    districts = {
        city: tuple(names)
        for city, *names in (line.split() for line in _DISTRICT_TABLE.strip().splitlines())
    }
    provinces = []
    for line in _PROVINCE_TABLE.strip().splitlines():
        region_code, iso, name, full_name, division, weight, *cities = line.split()
        provinces.append(
            _Province(
                region_code=region_code,
                code=f"CN-{iso}",
                name=name,
                full_name=full_name,
                division=division,
                weight=int(weight),
                cities=tuple(_City(city, districts.get(city, ())) for city in cities),
            )
        )
    return tuple(provinces)


@dataclass(frozen=True)
class _Office:
    province: str
    city: str
    name: str


@dataclass(frozen=True)
class _Group:
    industry: str
    root: _Office
    subsidiaries: list[_Office]


@dataclass(frozen=True)
class _NearDuplicate:
    province: str
    city: str
    industry: str
    second_registered: bool
    first: str
    second: str


def _parse_groups() -> tuple[_Group, ...]:
    groups: list[_Group] = []
    for line in _GROUP_TABLE.strip("\n").splitlines():
        if line.startswith(" "):
            groups[-1].subsidiaries.append(_Office(*line.split()))
        else:
            industry, *office = line.split()
            groups.append(_Group(industry, _Office(*office), []))
    return tuple(groups)


def _parse_near_duplicates() -> tuple[_NearDuplicate, ...]:
    provinces = {city.name: p.name for p in _PROVINCES for city in p.cities}
    pairs = []
    for line in _NEAR_DUPLICATE_TABLE.strip().splitlines():
        city, industry, registered, first, second = line.split(" | ")
        pairs.append(
            _NearDuplicate(provinces[city], city, industry, registered == "+", first, second)
        )
    return tuple(pairs)


_PROVINCES = _parse_provinces()
_PROVINCES_BY_NAME = {province.name: province for province in _PROVINCES}
_GROUPS = _parse_groups()
_NEAR_DUPLICATES = _parse_near_duplicates()


def build_demo_dataset(seed: int = 20261123) -> DemoDataset:
    """Build the demo territories, owners, memberships and customers: same seed, same rows."""
    rng = random.Random(seed)
    territories = _build_territories(rng)
    owners = _build_owners(rng)
    members = _build_members(territories, owners)
    customers = _CustomerFactory(rng).build()
    return DemoDataset(
        territories=list(territories.values()),
        owners=list(owners.values()),
        members=members,
        customers=customers,
    )


def _new_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _stamp(offset: dt.timedelta) -> dict[str, Any]:
    at = BASE_AT + offset
    return {"version": 1, "created_at": at, "updated_at": at}


def _build_territories(rng: random.Random) -> dict[str, Territory]:
    """Territories by code: 全国, then the seven regions, then the provinces."""
    root = Territory(
        id=_new_uuid(rng),
        code="CN",
        name="全国",
        description="全国客户总池：没有被任何大区或省份规则覆盖的客户在此兜底。",
        parent_id=None,
        strategy=_ROUND_ROBIN,
        **_stamp(dt.timedelta()),
    )
    territories = {"CN": root}
    for code, name, strategy in _REGIONS:
        provinces = "、".join(p.name for p in _PROVINCES if p.region_code == code)
        territories[code] = Territory(
            id=_new_uuid(rng),
            code=code,
            name=name,
            description=f"{name}大区，负责{provinces}的客户。",
            parent_id=root.id,
            strategy=strategy,
            **_stamp(dt.timedelta(minutes=len(territories))),
        )
    for province in _PROVINCES:
        region = territories[province.region_code]
        territories[province.code] = Territory(
            id=_new_uuid(rng),
            code=province.code,
            name=province.name,
            description=f"{province.full_name}的客户，属{region.name}大区。",
            parent_id=region.id,
            strategy=_PROVINCE_STRATEGIES.get(province.code.removeprefix("CN-"), _ROUND_ROBIN),
            **_stamp(dt.timedelta(minutes=len(territories))),
        )
    return territories


def _build_owners(rng: random.Random) -> dict[str, Owner]:
    owners: dict[str, Owner] = {}
    for external_id, name, mailbox, active, capacity in _OWNERS:
        owners[external_id] = Owner(
            id=_new_uuid(rng),
            external_id=external_id,
            name=name,
            email=f"{mailbox}@example.com",
            active=active,
            capacity=capacity,
            **_stamp(dt.timedelta(hours=1, minutes=len(owners))),
        )
    return owners


def _build_members(
    territories: dict[str, Territory], owners: dict[str, Owner]
) -> list[TerritoryMember]:
    return [
        TerritoryMember(
            territory_id=territories[territory_code].id,
            owner_id=owners[owner_external_id].id,
            role=role,
            weight=weight,
            capacity=capacity,
            **_stamp(dt.timedelta(hours=2, minutes=index)),
        )
        for index, (owner_external_id, territory_code, role, weight, capacity) in enumerate(
            _MEMBERS
        )
    ]


class _CustomerFactory:
    """Builds the customer pool in insertion order, keeping names and registration ids unique."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._customers: list[Customer] = []
        self._registration_ids: set[str] = set()
        self._name_cores: set[str] = set()

    def build(self) -> list[Customer]:
        for group in _GROUPS:
            self._add_group(group)
        # The second entry of a near-duplicate arrives last, as a re-entry months later would.
        firsts = [self._add_near_duplicate_first(pair) for pair in _NEAR_DUPLICATES]
        generated = CUSTOMER_COUNT - len(self._customers) - len(_NEAR_DUPLICATES)
        for _ in range(generated):
            self._add_generated()
        for pair, first in zip(_NEAR_DUPLICATES, firsts, strict=True):
            self._add_near_duplicate_second(pair, first)
        return self._customers

    def _add_group(self, group: _Group) -> None:
        rng = self._rng
        root = self._add(
            office=group.root,
            industry=group.industry,
            employees=rng.randint(8_000, 30_000),
            tier="A",
            tags=("key_account", "strategic"),
        )
        for office in group.subsidiaries:
            self._add(
                office=office,
                industry=group.industry,
                employees=rng.randint(150, 3_000),
                parent=root,
            )

    def _add_near_duplicate_first(self, pair: _NearDuplicate) -> Customer:
        return self._add(
            office=_Office(pair.province, pair.city, pair.first),
            industry=pair.industry,
            employees=self._employees(),
            tags=("open_deal",),
        )

    def _add_near_duplicate_second(self, pair: _NearDuplicate, first: Customer) -> None:
        employees = None if first.employees is None else round(first.employees * 1.05)
        self._add(
            office=_Office(pair.province, pair.city, pair.second),
            industry=pair.industry,
            employees=employees,
            registered=pair.second_registered,
            tags=("open_deal",),
        )

    def _add_generated(self) -> None:
        rng = self._rng
        province = rng.choices(_PROVINCES, weights=[p.weight for p in _PROVINCES])[0]
        city_weights = [3] + [1] * (len(province.cities) - 1)
        city = rng.choices(province.cities, weights=city_weights)[0]
        industry = rng.choices(list(_INDUSTRIES), [i.weight for i in _INDUSTRIES.values()])[0]
        employees = self._employees()
        name = self._company_name(province, city, industry, employees)
        self._add(
            office=_Office(province.name, city.name, name),
            industry=industry,
            employees=employees,
            registered=rng.random() >= 0.08,
            industry_known=rng.random() >= 0.02,
        )

    def _employees(self) -> int | None:
        if self._rng.random() < 0.03:
            return None
        return max(5, min(50_000, int(self._rng.lognormvariate(4.6, 1.5))))

    def _company_name(
        self, province: _Province, city: _City, industry: str, employees: int | None
    ) -> str:
        rng = self._rng
        while True:
            prefix = city.name if rng.random() < 0.8 else province.name
            core = prefix + rng.choice(_BRANDS) + rng.choice(_INDUSTRIES[industry].words)
            if core not in self._name_cores:
                break
        self._name_cores.add(core)
        large = employees is not None and employees >= 2_000
        suffixes = ("有限公司", "股份有限公司", "集团有限公司")
        return core + rng.choices(suffixes, weights=(3, 4, 3) if large else (17, 3, 0))[0]

    def _add(
        self,
        *,
        office: _Office,
        industry: str,
        employees: int | None,
        parent: Customer | None = None,
        tier: str | None = None,
        tags: tuple[str, ...] = (),
        registered: bool = True,
        industry_known: bool = True,
    ) -> Customer:
        province = _PROVINCES_BY_NAME[office.province]
        city = province.city(office.city)
        facts = self._facts(office.name, city, industry, employees, tier, tags)
        index = len(self._customers)
        customer = Customer(
            id=_new_uuid(self._rng),
            source=SOURCE,
            external_id=f"C{index + 1:06d}",
            name=office.name,
            country="CN",
            province=province.name,
            city=city.name,
            industry=industry if industry_known else None,
            registration_id=self._registration_id(province) if registered else None,
            parent_id=None if parent is None else parent.id,
            **facts,
            **_stamp(dt.timedelta(days=1, seconds=index * 30)),
        )
        self._customers.append(customer)
        return customer

    def _facts(
        self,
        name: str,
        city: _City,
        industry: str,
        employees: int | None,
        tier: str | None,
        tags: tuple[str, ...],
    ) -> dict[str, Any]:
        rng = self._rng
        revenue = None
        if employees is not None:
            scale = rng.lognormvariate(0, 0.6)
            revenue = round(employees * _INDUSTRIES[industry].revenue_per_employee * scale, 2)
        tier = tier or _tier(rng, revenue)
        channel = "partner" if rng.random() < 0.25 else "direct"
        return {
            "district": rng.choice(city.districts)
            if city.districts and rng.random() < 0.6
            else None,
            "employees": employees,
            "annual_revenue": revenue,
            "tier": tier,
            "potential_score": _potential_score(rng, tier),
            "tags": _tags(rng, name, industry, employees, tier, channel, tags),
            "attributes": _attributes(rng, channel, employees),
            "last_activity_at": _last_activity_at(rng),
        }

    def _registration_id(self, province: _Province) -> str:
        while True:
            candidate = _unified_social_credit_code(self._rng, province.division)
            if candidate not in self._registration_ids:
                self._registration_ids.add(candidate)
                return candidate


def _tier(rng: random.Random, revenue: float | None) -> str:
    if revenue is None:
        return rng.choice(("C", "D"))
    tier = "A" if revenue >= 1.5e9 else "B" if revenue >= 4e8 else "C" if revenue >= 8e7 else "D"
    # Account value is more than revenue: now and then a rep has rated a customer a grade apart.
    if rng.random() < 0.08:
        grades = "ABCD"
        shifted = grades.index(tier) + rng.choice((-1, 1))
        tier = grades[min(3, max(0, shifted))]
    return tier


def _potential_score(rng: random.Random, tier: str) -> int | None:
    if rng.random() < 0.1:
        return None
    base = {"A": 75, "B": 62, "C": 48, "D": 35}[tier]
    return max(0, min(100, round(rng.gauss(base, 15))))


def _tags(
    rng: random.Random,
    name: str,
    industry: str,
    employees: int | None,
    tier: str,
    channel: str,
    given: tuple[str, ...],
) -> list[str]:
    tags = set(given)
    if tier == "A" and rng.random() < 0.7:
        tags.add("key_account")
    if tier in ("A", "B") and rng.random() < 0.25:
        tags.add("strategic")
    if "股份" in name and (employees or 0) >= 500 and rng.random() < 0.5:
        tags.add("listed")
    public_sector = industry in ("energy", "education", "construction", "healthcare")
    if rng.random() < (0.15 if public_sector else 0.03):
        tags.add("government")
    if channel == "partner" and rng.random() < 0.6:
        tags.add("partner")
    for tag, share in (("open_deal", 0.15), ("new", 0.08), ("renewal", 0.1), ("churn_risk", 0.05)):
        if rng.random() < share:
            tags.add(tag)
    return sorted(tags)


def _attributes(rng: random.Random, channel: str, employees: int | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"channel": channel}
    if rng.random() < 0.8:
        attributes["erp"] = rng.choice(_ERP_SYSTEMS)
    attributes["has_website"] = rng.random() < (0.9 if (employees or 0) > 50 else 0.6)
    attributes["founded_year"] = rng.randint(1985, 2024)
    return attributes


def _last_activity_at(rng: random.Random) -> dt.datetime | None:
    roll = rng.random()
    if roll < 0.82:
        return BASE_AT - dt.timedelta(seconds=rng.randint(3_600, 180 * 86_400))
    if roll < 0.9:
        return BASE_AT - dt.timedelta(seconds=rng.randint(181 * 86_400, 540 * 86_400))
    return None


def _unified_social_credit_code(rng: random.Random, division: str) -> str:
    """An 18-character 统一社会信用代码 (GB 32100-2015) with valid check characters."""
    area = f"{division}{rng.randint(1, 9):02d}{rng.randint(1, 18):02d}"
    body = "".join(rng.choice(_USCC_CHARS) for _ in range(8))
    weighted = sum(
        int(char, 36) * weight
        for char, weight in zip(body, _ORGANIZATION_CODE_WEIGHTS, strict=True)
    )
    organization_check = 11 - weighted % 11
    organization_code = body + {10: "X", 11: "0"}.get(organization_check, str(organization_check))
    head = "91" + area + organization_code
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(head, _USCC_WEIGHTS, strict=True))
    return head + _USCC_CHARS[-total % 31]
