from node.cli import app

if __name__ == "__main__":  # not when a helper process started with "spawn" imports it
    app(prog_name="integra")
