"""The command line's commands as argparse sees them (components/__main__.py builds the parser from them and
dispatches): each module adds one command's or one group's arguments and runs it from the parsed arguments.
"""
