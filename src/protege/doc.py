"""One report, two renderings: a list of blocks (headings, paragraphs, lists, tables, images) written as Markdown
and as one self-contained HTML page (images embedded as data, nothing fetched). The bench report and each run's
report use it.

    doc = Doc(out_dir); doc.h(1, "Title"); doc.table(["a", "b"], [[1, doc.link("run", path)]])
    doc.img("loss", out_dir / "plots" / "loss.png"); doc.markdown(); doc.html("Title")

A table cell is a string, or (text, path) to link the text to a file or folder, relative to `out_dir`.
"""
from __future__ import annotations

import base64
import html
import os
from pathlib import Path


def _rel(path: str | Path, out: Path) -> str:
    return os.path.relpath(Path(path).resolve(), out.resolve()).replace(os.sep, "/")


class Doc:
    def __init__(self, out: Path):
        self.out, self.blocks = out, []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def ul(self, items: list[str]):
        self.blocks.append(("ul", items))

    def table(self, header: list[str], rows: list[list]):
        self.blocks.append(("table", header, rows))

    def img(self, alt: str, path: Path):
        self.blocks.append(("img", alt, path))

    def link(self, text: str, path: str | Path | None):
        return text if path is None else (text, _rel(path, self.out))

    # -- rendering ------------------------------------------------------------------------------------------
    def markdown(self) -> str:
        lines = []
        for b in self.blocks:
            if b[0] == "h":
                lines += ["#" * b[1] + " " + b[2], ""]
            elif b[0] == "p":
                lines += [b[1], ""]
            elif b[0] == "ul":
                lines += [f"- {item}" for item in b[1]] + [""]
            elif b[0] == "table":
                def md(c):
                    text = f"[{c[0]}]({c[1]})" if isinstance(c, tuple) else str(c)
                    return text.replace("|", "\\|")
                lines += ["| " + " | ".join(b[1]) + " |", "|" + "---|" * len(b[1])]
                lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in b[2]] + [""]
            elif b[0] == "img":
                lines += [f"![{b[1]}]({_rel(b[2], self.out)})", ""]
        return "\n".join(lines)

    def html(self, title: str) -> str:
        e = html.escape
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "ul":
                body.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b[1]) + "</ul>")
            elif b[0] == "table":
                def td(c):
                    return f'<td><a href="{e(c[1])}">{e(c[0])}</a></td>' if isinstance(c, tuple) else f"<td>{e(str(c))}</td>"
                head = "".join(f"<th>{e(h)}</th>" for h in b[1])
                rows = "".join("<tr>" + "".join(td(c) for c in row) + "</tr>" for row in b[2])
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif b[0] == "img":
                data = base64.b64encode(Path(b[2]).read_bytes()).decode()
                body.append(f'<p><img alt="{e(b[1])}" src="data:image/png;base64,{data}"></p>')
        style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
                 "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
                 "text-align:left}img{max-width:100%}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def from_markdown(text: str, out: Path) -> Doc:
    """The blocks of a Markdown text written the way protege's reports are (headings, paragraphs, `- ` lists,
    pipe tables), so one report can also be rendered as HTML without a second writer."""
    doc, para, bullets, table = Doc(out), [], [], []

    def flush() -> None:
        if para:
            doc.p(" ".join(para))
            para.clear()
        if bullets:
            doc.ul(list(bullets))
            bullets.clear()
        if table:
            doc.table(table[0], [r for r in table[2:]])
            table.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|"):
            if para or bullets:
                flush()
            table.append([c.strip() for c in stripped[1:-1].split(" | ")])
            continue
        if table:
            flush()
        if not stripped:
            flush()
        elif stripped.startswith("#"):
            flush()
            level = len(stripped) - len(stripped.lstrip("#"))
            doc.h(level, stripped[level:].strip())
        elif stripped.startswith("- "):
            if para:
                flush()
            bullets.append(stripped[2:])
        elif bullets and line.startswith("  "):
            bullets[-1] += " " + stripped  # a list item's continuation line
        else:
            para.append(stripped)
    flush()
    return doc
