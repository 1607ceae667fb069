"""genvid_devstack"""
