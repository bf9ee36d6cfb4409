"""Achievement functions named by `function_path`, resolved only through `registry`."""
