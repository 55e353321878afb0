"""runner.app"""
