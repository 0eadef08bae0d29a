"""The reference tables the demo data set is drawn from.

China's provinces, cities and districts grouped into sales regions, the sales team and its
territory memberships, industries, brand words and ERP systems, and the group companies and
near-duplicate companies the customer pool is seeded with. The tables are parsed once, at import.
"""

from __future__ import annotations

from dataclasses import dataclass

from territory_service.territories.models import DistributionStrategy, MemberRole

_ROUND_ROBIN = DistributionStrategy.ROUND_ROBIN
_WEIGHTED = DistributionStrategy.WEIGHTED
_LEAST_LOADED = DistributionStrategy.LEAST_LOADED

REGIONS: tuple[tuple[str, str, DistributionStrategy], ...] = (
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

PROVINCE_STRATEGIES = {
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
OWNERS: tuple[tuple[str, str, str, bool, int | None], ...] = (
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
MEMBERS: tuple[tuple[str, str, MemberRole, int, int | None], ...] = (
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


INDUSTRIES: dict[str, _Industry] = {
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
BRANDS = tuple(_BRAND_TABLE.split())

ERP_SYSTEMS = ("SAP", "Oracle", "用友", "金蝶", "鼎捷", "none")


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

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORGANIZATION_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class City:
    name: str
    districts: tuple[str, ...]


@dataclass(frozen=True)
class Province:
    region_code: str
    code: str
    name: str
    full_name: str
    division: str
    weight: int
    cities: tuple[City, ...]

    def city(self, name: str) -> City:
        return next(city for city in self.cities if city.name == name)


def _parse_provinces() -> tuple[Province, ...]:
    districts = {
        city: tuple(names)
        for city, *names in (line.split() for line in _DISTRICT_TABLE.strip().splitlines())
    }
    provinces = []
    for line in _PROVINCE_TABLE.strip().splitlines():
        region_code, iso, name, full_name, division, weight, *cities = line.split()
        provinces.append(
            Province(
                region_code=region_code,
                code=f"CN-{iso}",
                name=name,
                full_name=full_name,
                division=division,
                weight=int(weight),
                cities=tuple(City(city, districts.get(city, ())) for city in cities),
            )
        )
    return tuple(provinces)


@dataclass(frozen=True)
class Office:
    province: str
    city: str
    name: str


@dataclass(frozen=True)
class Group:
    industry: str
    root: Office
    subsidiaries: list[Office]


@dataclass(frozen=True)
class NearDuplicate:
    province: str
    city: str
    industry: str
    second_registered: bool
    first: str
    second: str


def _parse_groups() -> tuple[Group, ...]:
    groups: list[Group] = []
    for line in _GROUP_TABLE.strip("\n").splitlines():
        if line.startswith(" "):
            groups[-1].subsidiaries.append(Office(*line.split()))
        else:
            industry, *office = line.split()
            groups.append(Group(industry, Office(*office), []))
    return tuple(groups)


def _parse_near_duplicates() -> tuple[NearDuplicate, ...]:
    provinces = {city.name: p.name for p in PROVINCES for city in p.cities}
    pairs = []
    for line in _NEAR_DUPLICATE_TABLE.strip().splitlines():
        city, industry, registered, first, second = line.split(" | ")
        pairs.append(
            NearDuplicate(provinces[city], city, industry, registered == "+", first, second)
        )
    return tuple(pairs)


PROVINCES = _parse_provinces()
PROVINCES_BY_NAME = {province.name: province for province in PROVINCES}
GROUPS = _parse_groups()
NEAR_DUPLICATES = _parse_near_duplicates()
