"""JUnit XML for CI dashboards: a suite per host, a test case per host and resource.

The report names only resources that drifted; a host in sync gets one passing case
"in sync (N resources)". An unreachable or failed host is one case with an <error>.
Fleet consistency items are cases of a "fleet-consistency" suite.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from vnetctl.drift.formats.values import describe, value
from vnetctl.drift.report import DriftItem, DriftReport, HostState, by_host
from vnetctl.output.words import count


def render(report: DriftReport) -> str:
    root = ET.Element("testsuites", name="vnetctl drift")
    for host in report.hosts:
        suite = _suite(root, host.host)
        classname = f"vnetctl.drift.{host.host}"
        if host.state in (HostState.UNREACHABLE, HostState.FAILED):
            case = _case(suite, classname, host.state.value)
            error = ET.SubElement(case, "error", type=host.state.value, message=host.reason)
            error.text = host.reason
        elif not host.items:
            _case(suite, classname, f"in sync ({count(host.resources, 'resource')})")
        else:
            by_resource: dict[str, list[DriftItem]] = defaultdict(list)
            for item in host.items:
                by_resource[item.resource].append(item)
            for resource, items in by_resource.items():
                case = _case(suite, classname, resource)
                lines = [f"{i.kind.value}: {describe(i)}" for i in items]
                failure = ET.SubElement(case, "failure", type="drift", message="; ".join(lines))
                failure.text = "\n".join(lines)
        _count(suite)
    if report.consistency:
        suite = _suite(root, "fleet-consistency")
        for c in report.consistency:
            case = _case(suite, "vnetctl.drift.fleet", f"{c.resource} {c.field}")
            split = ", ".join(f"{h}={value(v)}" for h, v in by_host(c.values))
            message = f"declared {value(c.declared)} for all; actual {split}"
            ET.SubElement(case, "failure", type="inconsistent", message=message).text = message
        _count(suite)
    _count(root, suites=True)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _suite(root: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=name)


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")


def _count(element: ET.Element, suites: bool = False) -> None:
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    if not suites:
        element.set("skipped", "0")
