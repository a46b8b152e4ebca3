"""What evaluators sign and file: the official 绩效评价报告 of one run, as DOCX (python-docx) and
PDF (LibreOffice headless).

The structure is the one finance and HR bureaus file: 一、基本情况; 二、评价工作开展情况; 三、综合评价结论;
四、绩效指标分析; 五、存在的问题及原因; 六、整改建议; 附表1 绩效自评表; 附表2 站点明细; and the sign-off
block. A4 portrait, 仿宋-style body and 黑体-style headings where installed (else Noto Serif / Sans
CJK), page x of y, the run id, its status and the input fingerprint in every footer. Amounts in the
official tables are in 万元 to two decimals, dates in Chinese form (2027年2月15日), sites by name with
their code. Everything comes from the run's rows (reporting.report_frames) and the policy file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from yuhang_skills.core.policy import Plan
from yuhang_skills.evaluation.reporting import (
    CODE_LABELS,
    DIMENSIONS,
    SITE_NAMES,
    Row,
    format_text,
    is_missing,
    report_frames,
    resolve_run,
    run_info,
    to_date,
    to_datetime,
    to_decimal,
)

SECTIONS = (
    "一、基本情况",
    "二、评价工作开展情况",
    "三、综合评价结论",
    "四、绩效指标分析",
    "五、存在的问题及原因",
    "六、整改建议",
    "附表1 绩效自评表",
    "附表2 站点明细",
    "七、评价签署",
)
BODY_FONTS = ("FangSong", "仿宋", "FangSong_GB2312", "Noto Serif CJK SC")
HEADING_FONTS = ("SimHei", "黑体", "Noto Sans CJK SC")


def wan(fen: Any) -> str:
    """Integer fen as 万元 with two decimals: 200.00."""
    value = Decimal(int(to_decimal(fen))) / Decimal(1_000_000)
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"


def yuan_text(fen: Any) -> str:
    return f"{Decimal(int(to_decimal(fen))) / 100:,.2f}"


def cn_date(value: Any) -> str:
    if is_missing(value):
        return ""
    day = to_date(value)
    return f"{day.year}年{day.month}月{day.day}日"


def pct(value: Any) -> str:
    return "" if is_missing(value) else f"{to_decimal(value) * 100:.2f}%"


def site(code: Any) -> str:
    name = SITE_NAMES.get(str(code))
    return f"{name}({code})" if name else str(code)


def installed_font(candidates: tuple[str, ...]) -> str:
    """The first of ``candidates`` fontconfig knows, else the last (Noto CJK, which CI installs)."""
    if shutil.which("fc-list"):
        known = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, timeout=30).stdout
        families = {f.strip() for line in known.splitlines() for f in line.split(",")}
        for name in candidates:
            if name in families:
                return name
    return candidates[-1]


# ------------------------------------------------------------------------------ document helpers


def _set_font(run: Any, name: str, size: float | None = None, bold: bool | None = None) -> None:
    from docx.oxml.ns import qn
    from docx.shared import Pt

    run.font.name = name
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), name)
    if size is not None:
        run.font.size = Pt(size)
    if bold is not None:
        run.font.bold = bold


def _field(paragraph: Any, code: str) -> None:
    """A Word field (PAGE, NUMPAGES) in ``paragraph``."""
    from docx.oxml.ns import qn

    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, code), ("separate", None), (None, "1"), ("end", None)):
        if kind:
            element = run._element.makeelement(qn("w:fldChar"), {qn("w:fldCharType"): kind})
        elif text == code:
            element = run._element.makeelement(qn("w:instrText"), {qn("xml:space"): "preserve"})
            element.text = f" {code} "
        else:
            element = run._element.makeelement(qn("w:t"), {})
            element.text = text
        run._element.append(element)


class Writer:
    def __init__(self, body_font: str, heading_font: str):
        from docx import Document
        from docx.shared import Mm

        self.doc = Document()
        self.body_font, self.heading_font = body_font, heading_font
        section = self.doc.sections[0]
        section.page_width, section.page_height = Mm(210), Mm(297)
        section.left_margin = section.right_margin = Mm(25)
        section.top_margin, section.bottom_margin = Mm(25), Mm(22)
        normal = self.doc.styles["Normal"]
        normal.font.name = body_font
        from docx.oxml.ns import qn
        from docx.shared import Pt

        normal.font.size = Pt(12)
        normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), body_font)

    def title(self, text: str, size: float = 20) -> None:
        from docx.enum.text import WD_ALIGN_PARAGRAPH

        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _set_font(p.add_run(text), self.heading_font, size, True)

    def heading(self, text: str, size: float = 15) -> None:
        p = self.doc.add_paragraph()
        p.paragraph_format.space_before = 12
        p.paragraph_format.keep_with_next = True
        _set_font(p.add_run(text), self.heading_font, size, True)

    def para(self, text: str, bold: bool = False, indent: bool = True) -> None:
        from docx.shared import Pt

        p = self.doc.add_paragraph()
        if indent:
            p.paragraph_format.first_line_indent = Pt(24)
        _set_font(p.add_run(text), self.body_font, 12, bold)

    def table(
        self, headers: list[str], rows: list[list[str]], widths_mm: list[float] | None = None, size: float = 9
    ) -> None:
        from docx.shared import Mm

        table = self.doc.add_table(rows=1, cols=len(headers))
        table.style = "Table Grid"
        for cell, text in zip(table.rows[0].cells, headers, strict=True):
            cell.text = ""
            _set_font(cell.paragraphs[0].add_run(text), self.heading_font, size, True)
        for row in rows:
            cells = table.add_row().cells
            for cell, text in zip(cells, row, strict=True):
                cell.text = ""
                _set_font(cell.paragraphs[0].add_run(str(text)), self.body_font, size)
        # repeat the header row on every page
        from docx.oxml.ns import qn

        tr_pr = table.rows[0]._tr.get_or_add_trPr()
        tr_pr.append(tr_pr.makeelement(qn("w:tblHeader"), {qn("w:val"): "true"}))
        if widths_mm:  # the grid (LibreOffice lays out by it) and every cell (Word does)
            table.autofit = False
            for column, width in zip(table.columns, widths_mm, strict=True):
                column.width = Mm(width)
            for row in table.rows:
                for cell, width in zip(row.cells, widths_mm, strict=True):
                    cell.width = Mm(width)
        self.doc.add_paragraph()

    def footer(self, text: str) -> None:
        from docx.enum.text import WD_ALIGN_PARAGRAPH

        footer = self.doc.sections[0].footer
        p = footer.paragraphs[0]
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _set_font(p.add_run("第 "), self.body_font, 9)
        _field(p, "PAGE")
        _set_font(p.add_run(" 页 / 共 "), self.body_font, 9)
        _field(p, "NUMPAGES")
        _set_font(p.add_run(" 页"), self.body_font, 9)
        q = footer.add_paragraph()
        q.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _set_font(q.add_run(text), self.body_font, 8)


# ------------------------------------------------------------------------------ content


def _indicator_reason(
    ind: Row, gaps: pd.DataFrame, weakest: pd.DataFrame | None, rectification: pd.DataFrame | None
) -> str:
    """偏差原因分析及改进措施 of one indicator: met, or why not (the shortfall, the sites furthest
    from their targets, overdue rectification) and what would close it (the gap)."""
    if bool(ind["met"]):
        return "已达到年度目标。"
    target, actual = to_decimal(ind["target"]), to_decimal(ind["actual"])
    parts = [
        f"实际完成 {pct(actual)},低于目标 {pct(target)},失分 "
        f"{(to_decimal(ind['weight']) - to_decimal(ind['points'])).quantize(Decimal('0.01'))} 分。"
    ]
    mine = gaps[(gaps["indicator"] == ind["indicator"])] if not gaps.empty else gaps
    site_rows = mine[mine["site_code"].notna()] if not mine.empty else mine
    if not site_rows.empty:
        worst = site_rows.sort_values("missing_points", ascending=False).head(3)
        named = "、".join(f"{site(r['site_code'])}{int(r['year'])}年" for r in worst.to_dict("records"))
        parts.append(f"主要原因:{named}未达到年度目标(共 {len(site_rows)} 个站点年未达标)。")
    elif ind["indicator"] == "village_one_household_one_skill" and weakest is not None and not weakest.empty:
        rows = weakest[weakest["indicator"] == "households"].head(3)
        if not rows.empty:
            named = "、".join(
                f"{site(r['site_code'])}{int(r['year'])}年(未覆盖 {int(r['shortfall'])} 户)"
                for r in rows.to_dict("records")
            )
            parts.append(f"主要原因:{named}等村低收入农户“一户一技”覆盖不足。")
    else:
        parts.append(f"计算口径:{ind['basis']}。")
    whole = mine[mine["site_code"].isna()] if not mine.empty else mine
    if not whole.empty:
        g = whole.iloc[0].to_dict()
        unit = CODE_LABELS["unit"].get(str(g["unit"]), str(g["unit"]))
        need = format_text(
            g["additional_needed"],
            "count" if g["unit"] not in ("pass_rate_points", "satisfaction_points", "yuan") else "num",
        )
        gain = int(g["release_gain_fen"])
        parts.append(f"改进措施:还需完成 {need} {unit}方可满分" + (f",可多拨付 {wan(gain)} 万元。" if gain else "。"))
    if rectification is not None and not rectification.empty and not site_rows.empty:
        unit_indicator = {
            "person_times": "person_times",
            "pass_rate_points": "pass_rate",
            "satisfaction_points": "satisfaction_rate",
        }
        keys = {
            (r["site_code"], int(r["year"]), unit_indicator.get(str(r["unit"]))) for r in site_rows.to_dict("records")
        }
        overdue = [
            r
            for r in rectification.to_dict("records")
            if r["status"] == "overdue" and (r["site_code"], int(r["year"]), r["indicator"]) in keys
        ]
        if overdue:
            parts.append(
                "其中"
                + "、".join(f"{site(r['site_code'])}{int(r['year'])}年" for r in overdue)
                + f"逾期未整改,已追回 {wan(sum(int(r['recovery_fen']) for r in overdue))} 万元。"
            )
    return "".join(parts)


def build_document(engine: sa.Engine, plan: Plan, evaluation_year: int, run_id: str | None) -> Any:
    run_id = resolve_run(engine, evaluation_year, run_id)
    frames = report_frames(engine, evaluation_year, run_id)
    info = run_info(engine, run_id)
    district = frames["eval_district"].iloc[0].to_dict()
    policy = plan.policy
    empty = pd.DataFrame()
    indicators = frames.get("eval_indicator", empty)
    gaps = frames.get("eval_gap", empty)
    sites = frames.get("eval_site", empty)
    rect = frames.get("eval_rectification")
    weakest = frames.get("weakest_sites")
    villages = frames.get("eval_village")
    submissions = frames.get("eval_submissions")
    integrity = frames.get("eval_integrity")
    provisional = info.get("status") == "provisional"
    years = sorted({int(y) for y in sites["year"]}) if not sites.empty else []
    years_text = "—".join(str(y) for y in (years[0], years[-1])) if len(years) > 1 else "".join(map(str, years))

    w = Writer(installed_font(BODY_FONTS), installed_font(HEADING_FONTS))
    status_zh = CODE_LABELS["status"].get(str(info.get("status")), "")
    w.title(("【预评估】" if provisional else "") + "余杭区技能型社会建设专项激励资金")
    w.title(f"{evaluation_year}年绩效评价报告", 18)
    w.para(
        f"评价运行:{info.get('run_id', '')}   状态:{status_zh}   数据截至:{cn_date(district['as_of'])}", indent=False
    )
    if provisional:
        w.para(
            f"预评估:截止日期早于评价期数据齐全之日({cn_date(info.get('data_complete_on'))}),"
            "本报告不作为资金拨付依据。",
            bold=True,
        )

    source = policy.source_document
    counts = {p: sum(1 for s in plan.sites if s.programme == p) for p in ("village", "station", "base")}
    total_wan = next(r.subtotal_wan for r in policy.budget_table() if r.year == "total")
    tranche_fen = int(district["tranche_fen"])
    w.heading(SECTIONS[0])
    w.para(
        f"根据《{source.title}》({cn_date(source.issued)}印发,"
        f"{cn_date(source.in_force_from)}起施行),余杭区在 {years_text} 年实施期内建设技能型乡村(社区)"
        f" {counts['village']} 个、技能培训站点 {counts['station']} 个、技能实训基地 {counts['base']} 个,"
        f"计划总投入 {total_wan:,} 万元。省级激励资金分三批下达,其中最后一批 {wan(tranche_fen)} 万元"
        f"在 {evaluation_year} 年绩效评价后拨付,本次评价即为确定该笔资金的拨付额度。"
    )
    w.heading(SECTIONS[1])
    with engine.connect() as conn:
        accepted = conn.execute(sa.text("select count(*) from submissions where is_current = true")).scalar() or 0
        rows_staged = (
            conn.execute(
                sa.text("select coalesce(sum(rows_staged), 0) from submissions where is_current = true")
            ).scalar()
            or 0
        )
    weights = "、".join(f"{DIMENSIONS.get(k, (k,))[0]} {v.weight} 分" for k, v in policy.evaluation.dimensions.items())
    w.para(f"评价范围:{years_text} 年实施期内全部站点的年度目标完成情况、资金使用和服务对象满意度。")
    w.para(
        f"评价数据:各站点报送的培训花名册、资金支出台账、满意度调查和技能增收成效,"
        f"截至 {cn_date(district['as_of'])} 共采用现行报送文件 {int(accepted):,} 份、有效数据 {int(rows_staged):,} 行;"
        f"评价期数据齐全之日为 {cn_date(info.get('data_complete_on'))}(按报送日历最后一期的截止日)。"
    )
    w.para(
        f"评价方法:按《项目支出绩效评价管理办法》(财预〔2020〕10号)百分制,{weights};定量指标达到目标得满分,"
        "未达到的按实际/目标比例得分;诚信核查剔除的数据不计入指标。"
    )
    w.para(
        f"政策依据:政策文件 include/yuhang_skills/policy/yuhang.yaml,版本 {district['policy_version']};"
        f"输入指纹(sha256){district['input_fingerprint']}。"
    )

    w.heading(SECTIONS[2])
    released, recoveries = int(district["released_fen"]), int(district.get("recoveries_fen") or 0)
    net = int(district["net_released_fen"] if not is_missing(district.get("net_released_fen")) else released)
    w.para(f"综合评价得分 {format_text(district['score'], 'num')} 分,等级“{district['grade']}”。")
    w.para(
        f"拨付建议:按{CODE_LABELS['release_rule'].get(str(district['release_rule']), district['release_rule'])}规则"
        f"应拨付省级绩效资金 {wan(released)} 万元,扣减逾期未整改追回资金 {wan(recoveries)} 万元,"
        f"建议拨付 {wan(net)} 万元。",
        bold=True,
    )

    w.heading(SECTIONS[3])
    for dimension, group in indicators.groupby("dimension", sort=False):
        zh = DIMENSIONS.get(str(dimension), (str(dimension), ""))[0]
        points = sum((to_decimal(p) for p in group["points"]), Decimal(0))
        weight = sum((to_decimal(x) for x in group["weight"]), Decimal(0))
        w.para(f"{zh}指标:分值 {weight:.0f} 分,得分 {points:.2f} 分。", indent=False)
    w.table(
        ["指标", "分值", "目标值", "实际完成值", "得分"],
        [
            [
                r["name_zh"],
                format_text(r["weight"], "num"),
                pct(r["target"]),
                pct(r["actual"]),
                format_text(r["points"], "num"),
            ]
            for r in indicators.to_dict("records")
        ],
        [70, 18, 24, 26, 18],
    )

    w.heading(SECTIONS[4])
    missed = [r for r in indicators.to_dict("records") if not bool(r["met"])]
    n = 0
    for r in missed:
        n += 1
        w.para(f"({n}){r['name_zh']}未达标。" + _indicator_reason(r, gaps, weakest, rect))
    if rect is not None and not rect.empty:
        overdue = rect[rect["status"] == "overdue"]
        n += 1
        w.para(
            f"({n}){len(rect)} 项站点年度目标未达成,其中 {len(overdue)} 项逾期未整改,"
            f"追回资金 {wan(int(rect['recovery_fen'].sum()))} 万元。"
        )
    if submissions is not None and not submissions.empty:
        counts_by = submissions["record"].value_counts().to_dict()
        n += 1
        w.para(
            f"({n})报送方面:未报送 {counts_by.get('missing', 0)} 项,逾期报送 {counts_by.get('late', 0)} 项,"
            f"年度目标预警 {counts_by.get('early_warning', 0)} 项。"
        )
    if integrity is not None and not integrity.empty:
        n += 1
        w.para(
            f"({n})诚信核查发现问题 {int(integrity['findings'].sum())} 条,剔除数据 "
            f"{int(integrity['excluded_rows'].sum())} 行、人次 {int(integrity['excluded_person_times'].sum())} 个。"
        )
    if n == 0:
        w.para("各项指标均达到目标,未发现需要说明的问题。")

    w.heading(SECTIONS[5])
    if rect is not None and not rect.empty:
        for r in rect.to_dict("records"):
            status = CODE_LABELS["rectification_status"].get(str(r["status"]), str(r["status"]))
            what = CODE_LABELS["site_indicator"].get(str(r["indicator"]), str(r["indicator"]))
            target = (
                pct(r["target"])
                if r["indicator"] in ("pass_rate", "satisfaction_rate")
                else format_text(r["target"], "count") + " 人次"
            )
            actual = (
                ""
                if is_missing(r["actual"])
                else (
                    pct(r["actual"])
                    if r["indicator"] in ("pass_rate", "satisfaction_rate")
                    else format_text(r["actual"], "count") + " 人次"
                )
            )
            text = (
                f"{site(r['site_code'])}:{int(r['year'])}年{what}目标 {target},实际 {actual or '无数据'};"
                f"整改期限 {cn_date(r['deadline'])},{status}"
            )
            if r["status"] == "overdue":
                text += f",追回 {wan(r['recovery_fen'])} 万元,请于收到本报告后限期退回并补足培训任务。"
            elif r["status"] == "open":
                text += ",请在期限内完成整改并报区人社局复核。"
            else:
                text += f"(完成日期 {cn_date(r.get('rectified_on'))})。"
            w.para(text)
    else:
        w.para("无需整改的站点。")
    if villages is not None and not villages.empty:
        short = villages[villages["households_short"].fillna(0).astype(int) > 0]
        if not short.empty:
            worst = short.sort_values("households_short", ascending=False).head(5)
            w.para(
                "一户一技:"
                + "、".join(
                    f"{site(r['site_code'])}({int(r['year'])}年未覆盖 {int(r['households_short'])} 户)"
                    for r in worst.to_dict("records")
                )
                + "等村应在下一年度优先覆盖低收入农户。"
            )

    w.heading(SECTIONS[6])
    w.table(
        ["指标", "年度目标", "实际完成值", "分值", "得分", "偏差原因分析及改进措施"],
        [
            [
                r["name_zh"],
                pct(r["target"]),
                pct(r["actual"]),
                format_text(r["weight"], "num"),
                format_text(r["points"], "num"),
                _indicator_reason(r, gaps, weakest, rect),
            ]
            for r in indicators.to_dict("records")
        ],
        [34, 16, 18, 12, 12, 68],
        size=8,
    )

    w.heading(SECTIONS[7])
    detail = []
    for r in sites.to_dict("records"):
        rate = r["indicator"] in ("pass_rate", "satisfaction_rate")
        value = (lambda v: pct(v)) if rate else (lambda v: format_text(v, "count"))
        detail.append(
            [
                site(r["site_code"]),
                str(int(r["year"])),
                CODE_LABELS["site_indicator"].get(str(r["indicator"]), str(r["indicator"])),
                value(r["target"]),
                "" if is_missing(r["actual"]) else value(r["actual"]),
                pct(r["attainment"]),
                "是" if bool(r["met"]) else "否",
                CODE_LABELS["rectification_status"].get(str(r.get("rectification_status")), ""),
            ]
        )
    w.table(
        ["站点", "年度", "指标", "目标", "实际", "完成度", "达标", "整改状态"],
        detail,
        [46, 12, 24, 16, 16, 16, 10, 20],
        size=8,
    )

    w.heading(SECTIONS[8])
    signed = {s["role"]: s for s in info.get("signoffs", [])}
    sign_rows = []
    for role in policy.signoff_roles:
        s = signed.get(role)
        sign_rows.append(
            [
                role,
                s["name"] if s else "",
                to_datetime(s["signed_at"]).strftime("%Y年%m月%d日 %H:%M") if s else "",
                (s.get("comment") or "") if s else "",
            ]
        )
    w.table(["角色", "签署人", "签署时间", "意见"], sign_rows, [30, 30, 45, 55], size=10)
    w.para(f"评价运行 {info.get('run_id', '')};输入指纹 {district['input_fingerprint']}。", indent=False)
    mark = "预评估 " if provisional else ""
    w.footer(
        f"{mark}评价运行 {info.get('run_id', '')} · {status_zh} · 输入指纹 {str(district['input_fingerprint'])[:16]}"
    )
    return w.doc


def write_report_docx(engine: sa.Engine, plan: Plan, path: Path, evaluation_year: int, run_id: str | None) -> Path:
    """Write the official report of the run to ``path`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.docx")
    build_document(engine, plan, evaluation_year, run_id).save(str(tmp))
    tmp.replace(path)
    return path


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def convert_to_pdf(source: Path, target: Path, timeout: int = 240) -> Path:
    """``source`` (DOCX or XLSX) as PDF at ``target``, by LibreOffice headless with a private profile."""
    binary = soffice()
    if binary is None:
        raise FileNotFoundError("LibreOffice (soffice) is not installed: it converts the report to PDF")
    with tempfile.TemporaryDirectory(prefix="yuhang-soffice-") as work:
        env = {**os.environ, "HOME": work}
        result = subprocess.run(
            [
                binary,
                f"-env:UserInstallation=file://{work}/profile",
                "--headless",
                "--norestore",
                "--convert-to",
                "pdf",
                "--outdir",
                work,
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        produced = Path(work) / f"{source.stem}.pdf"
        if result.returncode != 0 or not produced.exists():
            raise RuntimeError(
                f"LibreOffice could not convert {source.name}: {result.stderr[-500:] or result.stdout[-500:]}"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(produced, tmp)
        tmp.replace(target)
    return target
