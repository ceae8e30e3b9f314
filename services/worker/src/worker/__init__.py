"""services/worker:worker"""
