"""A demo lrlab task plug-in: fit y = a x^2 + noise with a small MLP.

`specs` (the params, torch-free) is what the API loads; `task` (the torch side) is what
workers load. Its pyproject would declare:

    [project.entry-points."lrlab.task_specs"]
    quadratic = "lrlab_plugin_demo.specs:QuadraticTask"

    [project.entry-points."lrlab.tasks"]
    quadratic = "lrlab_plugin_demo.task:build_quadratic"
"""
