"""genvid_operator"""
