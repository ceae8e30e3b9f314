"""services/backend:backend"""
