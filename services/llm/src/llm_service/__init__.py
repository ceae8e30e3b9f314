"""services/llm:llm_service"""
