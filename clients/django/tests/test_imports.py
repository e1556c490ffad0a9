"""The package's modules import each other without a circle, and at the top.

router.py, hooks.py and state.py once needed each other and were held apart
by imports inside functions; the engine now lives in engine.py, which they
all import. This test reads the sources (ast), so a circle held apart the
old way fails here too.
"""

import ast
import os
import unittest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "replroute_django")


def package_imports(tree):
    """(module names imported from the package, at top level?) for each import."""
    top = set(id(node) for node in tree.body)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [alias.name for alias in node.names]
            found.extend((name, id(node) in top) for name in names)
    return found


class ImportGraphTests(unittest.TestCase):
    def graph(self):
        graph = {}
        for filename in sorted(os.listdir(PACKAGE)):
            if filename.endswith(".py"):
                with open(os.path.join(PACKAGE, filename)) as f:
                    tree = ast.parse(f.read(), filename)
                graph[filename[:-3]] = package_imports(tree)
        return graph

    def test_no_imports_inside_functions(self):
        late = [(module, name) for module, imports in self.graph().items() for name, top in imports if not top]
        self.assertEqual(late, [])

    def test_no_circle(self):
        graph = {m: sorted(set(n for n, _ in imports) - {m}) for m, imports in self.graph().items()}
        graph.pop("__init__")
        state = {}

        def visit(module, path):
            if state.get(module) == "done":
                return
            self.assertNotEqual(state.get(module), "open", "import circle: %s" % " -> ".join(path + [module]))
            state[module] = "open"
            for name in graph.get(module, ()):
                visit(name, path + [module])
            state[module] = "done"

        for module in graph:
            visit(module, [])
        self.assertIn("engine", graph["router"])
        self.assertIn("engine", graph["hooks"])
        self.assertNotIn("router", graph["engine"])
        self.assertNotIn("hooks", graph["engine"])


if __name__ == "__main__":
    unittest.main()
