"""genvid_api"""
