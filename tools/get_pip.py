"""Stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test runs ``get_pip_<version>.py`` with pip's install arguments to seed
each virtual environment it creates. This does the same from the local Python:
``ensurepip`` first, then ``pip install`` with the arguments it was given.
"""

import subprocess
import sys

IGNORED = {"--no-setuptools", "--no-wheel"}


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], stdout=subprocess.DEVNULL)
    arguments = [argument for argument in sys.argv[1:] if argument not in IGNORED]
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + arguments)


if __name__ == "__main__":
    main()
