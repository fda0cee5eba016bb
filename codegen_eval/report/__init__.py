"""Renderings of summaries and comparisons, one module per format: terminal text, markdown, JSON, JUnit XML, HTML."""

from codegen_eval.report.html import report_html
from codegen_eval.report.json_format import compare_json, report_json
from codegen_eval.report.junit import junit_xml
from codegen_eval.report.markdown import compare_markdown, report_markdown
from codegen_eval.report.model import ReportModel, TurnPair, build_report
from codegen_eval.report.text import compare_text, summary_table

__all__ = [
    "ReportModel",
    "TurnPair",
    "build_report",
    "compare_json",
    "compare_markdown",
    "compare_text",
    "junit_xml",
    "report_html",
    "report_json",
    "report_markdown",
    "summary_table",
]
