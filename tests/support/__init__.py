"""What the test layers share: process launchers, and factories for users, tokens and jobs.

Test modules import helpers from here (or from their own layer), never from
another layer's modules or from a conftest.
"""
