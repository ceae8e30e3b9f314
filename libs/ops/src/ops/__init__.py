"""libs/ops:ops"""
