from volumed.runtime.controller import DependencyGraph, Input, InputKind, Output, OutputKind


def _graph() -> DependencyGraph:
    return DependencyGraph.build(
        [
            (
                "VolumeFormatter",
                [Input("config", "VolumeConfigs.block.volumed.dev", kind=InputKind.STRONG)],
                [Output("VolumeStatuses.block.volumed.dev", namespace="runtime")],
            ),
            (
                'Mounter "main"',
                [
                    Input("runtime", "VolumeStatuses.block.volumed.dev", id="STATE"),
                    Input("runtime", "MountStatuses.block.volumed.dev", kind=InputKind.DESTROY_READY),
                ],
                [Output("MountStatuses.block.volumed.dev", OutputKind.SHARED, namespace="runtime")],
            ),
        ]
    )


def test_resource_types_are_collected_and_sorted() -> None:
    assert _graph().resource_types() == [
        ("config", "VolumeConfigs.block.volumed.dev"),
        ("runtime", "MountStatuses.block.volumed.dev"),
        ("runtime", "VolumeStatuses.block.volumed.dev"),
    ]


def test_dot_export() -> None:
    assert _graph().to_dot() == (
        "digraph volumed {\n"
        "  rankdir=LR;\n"
        '  node [fontname="sans-serif"];\n'
        '  c0 [shape=box, label="VolumeFormatter"];\n'
        '  c1 [shape=box, label="Mounter \\"main\\""];\n'
        '  t0 [shape=ellipse, label="config/VolumeConfigs.block.volumed.dev"];\n'
        '  t1 [shape=ellipse, label="runtime/MountStatuses.block.volumed.dev"];\n'
        '  t2 [shape=ellipse, label="runtime/VolumeStatuses.block.volumed.dev"];\n'
        '  t0 -> c0 [label="strong", style=bold];\n'
        '  c0 -> t2 [label="exclusive", style=bold];\n'
        '  t2 -> c1 [label="weak id=STATE", style=solid];\n'
        '  t1 -> c1 [label="destroyReady", style=dashed];\n'
        '  c1 -> t1 [label="shared", style=solid];\n'
        "}\n"
    )


def test_mermaid_export() -> None:
    assert _graph().to_mermaid() == (
        "flowchart LR\n"
        '  c0["VolumeFormatter"]\n'
        '  c1["Mounter #quot;main#quot;"]\n'
        '  t0(["config/VolumeConfigs.block.volumed.dev"])\n'
        '  t1(["runtime/MountStatuses.block.volumed.dev"])\n'
        '  t2(["runtime/VolumeStatuses.block.volumed.dev"])\n'
        '  t0 ==>|"strong"| c0\n'
        '  c0 -->|"exclusive"| t2\n'
        '  t2 -->|"weak id=STATE"| c1\n'
        '  t1 -.->|"destroyReady"| c1\n'
        '  c1 -->|"shared"| t1\n'
    )


def test_empty_graph() -> None:
    graph = DependencyGraph.build([])
    assert graph.to_mermaid() == "flowchart LR\n"
    assert graph.to_dot().startswith("digraph volumed {")
