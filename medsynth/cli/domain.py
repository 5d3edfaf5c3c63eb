"""`medsynth domain check` and `medsynth domain remove`: the registry and every domain's files, one line per problem;
a domain a user added taken out of the user layer again."""

from __future__ import annotations

import argparse
import sys

from medsynth.cli.parsing import EXIT_FAILURE, EXIT_OK, UsageError


def cmd_domain_check(args: argparse.Namespace) -> int:
    from medsynth.paths import user_registry_path
    from medsynth.registry import check_registry, selected_pack_name

    user = args.user_registry_file or user_registry_path()
    packs = () if args.pack == "all" else (args.pack or selected_pack_name(),)
    problems = check_registry(args.registry_file, user, packs)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return EXIT_FAILURE
    layer = f" with the user layer {user}" if user.is_file() else ""
    print(f"registry{layer}: every domain's files for {args.pack or packs[0]} are in place")
    return EXIT_OK


def cmd_domain_remove(args: argparse.Namespace) -> int:
    from medsynth.registry import remove_domain_tables, write_user_tables

    registry = args.registry
    if args.name not in registry.domains:
        raise UsageError(f"domain remove: no domain {args.name!r}; known: {', '.join(registry.domains)}")
    layer = registry.user_path
    filled = layer is not None and layer.is_file() and remove_domain_tables(layer, args.name) != layer.read_text()
    if args.name not in registry.user_domains() and not filled:
        raise UsageError(
            f"domain remove: {args.name} is defined in {registry.get_domain(args.name).defined_in}, not in the user "
            "layer; only domains added with `medsynth domain add` can be removed"
        )
    write_user_tables(registry, args.name, "")  # what is left must load: never write a registry that does not
    taken = "its user-layer images and models" if args.name not in registry.user_domains() else args.name
    print(f"removed {taken} from {layer}; its trained files are left where they are")
    return EXIT_OK


def add_commands(commands) -> None:
    from medsynth.cli.parsing import ConfigCommand, Parser, add_config_command

    domain = commands.add_parser(
        "domain",
        help="add a domain from your labelled images; check the registry and its files; remove a domain you added",
    )
    parts = domain.add_subparsers(dest="domain_command", metavar="COMMAND", parser_class=Parser, required=True)
    check = parts.add_parser(
        "check", help="the registry (shipped + user layer) and every domain's files, one line per problem"
    )
    check.add_argument(
        "--pack", default=None, help="the pack whose files are checked, or all (default: $MEDSYNTH_PACK or mini)"
    )
    check.set_defaults(func=cmd_domain_check, tolerates_broken_registry=True)
    add_config_command(
        parts,
        "add",
        ConfigCommand("medsynth.onboarding.config:DomainAddConfig", "medsynth.onboarding.add:add_domain"),
        positional=("name",),
    )
    remove = parts.add_parser("remove", help="take a domain added with `domain add` out of the user registry")
    remove.add_argument("name", help="the domain's name")
    remove.set_defaults(func=cmd_domain_remove)
