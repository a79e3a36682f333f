"""MkDocs hook: the CLI reference page is generated from the Typer app, never written.

``docs/cli.md`` holds the marker ``<!-- sqeval-cli-reference -->``; this hook replaces
it with the help of ``sqeval`` and of each command, exactly as ``sqeval COMMAND --help``
prints it (Typer's plain help, the app's own text and options).
"""

from __future__ import annotations

MARKER = "<!-- sqeval-cli-reference -->"
WIDTH = 88


def cli_reference() -> str:
    """The reference as Markdown: one section per command, its help in a text block."""
    import typer.main

    from sqeval.cli import app

    root = typer.main.get_command(app)
    context_class = root.context_class
    parent = context_class(root, info_name="sqeval", terminal_width=WIDTH,
                           max_content_width=WIDTH)
    parts = ["## sqeval", "", "```text", root.get_help(parent).rstrip(), "```", ""]
    for name in root.list_commands(parent):
        command = root.get_command(parent, name)
        context = context_class(command, info_name=name, parent=parent,
                                terminal_width=WIDTH, max_content_width=WIDTH)
        parts += [f"## sqeval {name}", "", "```text", command.get_help(context).rstrip(),
                  "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (MkDocs' signature)
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
