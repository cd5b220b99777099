"""chainsense: blockchain-enabled mobile crowdsensing for industrial IoT, steered by MARL."""

__version__ = "0.1.0"
