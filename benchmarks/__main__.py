"""Run every benchmark group in this package and print one combined table.

    python -m benchmarks [--threads N] [--repeats R] [--no-write]

A group is a module here with NAME and run(args) -> rows; each writes its own
benchmarks/results/<NAME>.json. Other modules (the parity script, the PyTorch models) are
not groups and are skipped.
"""
import importlib
import pkgutil

from . import __path__ as package_path, common

NOT_GROUPS = {"common", "__main__"}


def groups():
    names = sorted(m.name for m in pkgutil.iter_modules(package_path) if m.name not in NOT_GROUPS)
    modules = [importlib.import_module(f"benchmarks.{name}") for name in names]
    return [m for m in modules if hasattr(m, "NAME") and hasattr(m, "run")]


def main(argv=None):
    args = common.parse_args(__doc__.splitlines()[0], argv)
    threads = common.set_threads(args.threads)
    common.keep_freed_memory()
    info = common.machine_info(threads)
    every_row = []
    for group in groups():
        print(f"running {group.NAME} ...", flush=True)
        rows = group.run(args)
        every_row += rows
        if not args.no_write:
            print(f"  wrote {common.write_results(group.NAME, rows, info, vars(args))}")
    print(f"{info['cpu']}, {info['cores_available']} cores, {threads} threads, "
          f"numpy {info['numpy']}, torch {info['torch']}, median of {args.repeats}")
    print(common.format_table(every_row))


if __name__ == "__main__":
    main()
